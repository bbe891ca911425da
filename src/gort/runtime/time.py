"""Timers (mirrors runtime/time.go, Go 1.14+): a timer heap per P.

There is no timer goroutine or thread. Each P owns a heap of
``(when, seq, f, arg)`` entries; ``checktimers`` runs the due ones from the
scheduler (``schedule``, ``findrunnable``), and an M with nothing to run
sleeps on its note exactly until its P's earliest timer. An idle runtime
therefore burns no CPU, and a sleeping goroutine costs one heap entry.

Only the owner M touches a P's heap: a timer is always (re)started on the
heap of the calling goroutine's P. Stopping does not touch the heap: it
bumps the timer's ``seq`` so that its entry is stale and skipped when it
reaches the top (Go's "deleted" timers); ``clean`` drops stale entries in
bulk once they are a quarter of the heap, as Go does. checkdead looks at the
heaps only while every M is idle.

Go uses a 4-ary heap because four ``timerWhen`` structs share a cache line.
A Python list holds pointers, so that reason does not carry over, while
the sift loops would run in the interpreter: measured here with 100,000
timers, a Python 4-ary heap costs 3.5 us per pop against 1.25 us for the
C ``heapq`` (binary). gort uses ``heapq``.

Timer state changes (fire, stop, reset) race only when several Ms run
goroutines; then they take ``_tlock``, a single lock, as they are rare
compared with channel operations.

Timers that deliver on a channel are held weakly (Go 1.23): the heap entry
of ``after`` holds its channel through a weak reference, that of a Timer
or Ticker the timer itself (whose channel holds it back, ``Chan.timer``).
A timeout the program dropped (``select(ch.recv, after(60).recv)`` in a
loop) is freed at once; its dead entry is skipped when it reaches the top
and dropped in bulk whenever the heap has doubled since the last scan
(amortised O(1) per timer). ``after_func`` timers are held strongly: they
must run.

A goroutine woken by a timer (a sleep ending, a Timer's value reaching a
waiting receiver) goes to the head of its P's queue, in deadline order:
it runs within a time slice however many goroutines are runnable (Go's
goready puts it in runnext for the same reason). Unlike runnext, the
head does not displace a hand-off partner already in runnext.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from heapq import heapify, heappop, heappush
from time import monotonic
from typing import Any
from weakref import ReferenceType, ref

from . import trace as _trace
from .runtime2 import G_RUNNABLE, G, P, sched

_seqs = itertools.count(1)
_tlock = threading.Lock()  # timer state changes with several Ms; lazy timer channels

# A heap entry: (when, seq, f, arg); f(arg, seq) runs it.
Entry = tuple[float, int, Callable[[Any, int], None], Any]

STALE = -1
CLEAN_MIN = 64  # stale entries worth a rebuild once they are a quarter of the heap
# The longest an M sleeps on its note in one go: Lock.acquire rejects a
# timeout above threading.TIMEOUT_MAX (OverflowError), and a timer an hour
# or a year away (a "disabled" timeout, Timer(inf)) needs no exact wait.
MAX_SLEEP = 3600.0


def duration(d: Any, call: str) -> float:
    """d as seconds for ``call``: a TypeError naming call for a non-number,
    a ValueError for NaN (as time.sleep), which would poison the heap's order."""
    if d.__class__ is not float and d.__class__ is not int:
        if not hasattr(type(d), "__float__"):  # numbers (Decimal, Fraction...), not str
            raise TypeError(f"{call}: duration must be a number of seconds, not {type(d).__name__}")
        d = float(d)
    if d != d:
        raise ValueError(f"{call}: invalid duration NaN (not a number)")
    return d  # type: ignore[no-any-return]


def addtimer(pp: P, when: float, f: Callable[[Any, int], None], arg: Any) -> int:
    """Push a timer entry on pp's heap (pp's M only); returns its seq."""
    seq = next(_seqs)
    h = pp.timers
    if len(h) >= pp.timers_scan:
        clean(pp)  # entries of dropped timers pile up in a loop that never waits
    heappush(h, (when, seq, f, arg))
    return seq


def checktimers(pp: P) -> None:
    """Run pp's due timers. pp's M only; call with a non-empty heap.

    Goroutines they wake collect in ``pp.timerwoken`` (``readytimer``) and
    then go to the head of the run queue together, in deadline order.
    """
    h = pp.timers
    now = monotonic()
    while h and h[0][0] <= now:
        _, seq, f, arg = heappop(h)
        f(arg, seq)
    woken = pp.timerwoken
    if woken:
        _put_woken(pp, woken)
    if pp.timers_stale > CLEAN_MIN and pp.timers_stale * 4 > len(h):
        clean(pp)


def _put_woken(pp: P, woken: list[G]) -> None:
    """Queue the Gs this checktimers woke at the head of pp's queue, but after
    those an earlier checktimers put there that have not run yet: deadline
    order holds across batches too."""
    q = pp.runq
    pos = 0
    last = pp.timerlast
    if last is not None and q:
        try:
            pos = q.index(last, 0, 256) + 1
        except ValueError:
            pos = 0  # it ran already
    if pos == 0:
        q.extendleft(reversed(woken))
    else:
        for gp in woken:
            q.insert(pos, gp)
            pos += 1
    pp.timerlast = woken[-1]
    woken.clear()


def readytimer(gp: G) -> None:
    """goready for a goroutine a timer wakes (see the module's docstring).

    Called from checktimers, on the heap owner's M.
    """
    if sched.tracing:
        _trace.unblock(gp)
    gp.status = G_RUNNABLE
    pp = gp.p
    if sched.multi:
        m = pp.m
        if m is None or m.ident != threading.get_ident():
            from .proc import inject

            inject(pp, gp)
            return
    pp.timerwoken.append(gp)


def clean(pp: P) -> None:
    """Drop stale entries (stopped, reset or dropped timers) from pp's heap."""
    h = pp.timers
    h[:] = [e for e in h if not _is_stale(e)]
    heapify(h)
    pp.timers_stale = 0
    pp.timers_scan = max(CLEAN_MIN, 2 * len(h))


def _is_stale(e: Entry) -> bool:
    """Will this entry do nothing when it fires?"""
    owner = e[3]
    if owner.__class__ is ReferenceType:
        owner = owner()
        if owner is None:
            return True  # the program dropped the timer (or after's channel)
    if isinstance(owner, TimerState):
        return owner._seq != e[1]
    if owner.__class__ is G:
        return owner.param != e[1]  # type: ignore[no-any-return]  # gort.sleep's entry
    return False


def weakly_timed() -> list[Any]:
    """What the pending entries of every heap hold weakly and is still alive
    (for the leak finder: a reference no referrer shows). Run with the
    world quiet enough for a diagnostic: heaps are read without a lock."""
    out = []
    for pp in list(sched.allp):
        for e in list(pp.timers):
            arg = e[3]
            if arg.__class__ is ReferenceType and not _is_stale(e):
                obj = arg()
                if obj is not None:
                    out.append(obj)
    return out


def has_timers(pp: P) -> bool:
    """Any live timer on pp? (For checkdead, with every M idle.)"""
    h = pp.timers
    while h and _is_stale(h[0]):
        heappop(h)
    return bool(h)


def sleep_delay(pp: P) -> float:
    """How long pp's M may sleep: until its earliest timer, or -1 (forever)."""
    h = pp.timers
    if not h:
        return -1
    when: float = h[0][0]
    return min(max(0.0, when - monotonic()), MAX_SLEEP)


def movetimers(src: P, dst: P) -> None:
    """Move a retired P's live timers onto dst's heap (Go's moveTimers).

    On dst's M; src's M has ended, so nothing else touches src's heap.
    """
    with _tlock:  # a concurrent stop reads t._pp
        for e in src.timers:
            if _is_stale(e):
                continue
            heappush(dst.timers, e)
            owner = e[3]
            if owner.__class__ is ReferenceType:
                owner = owner()
            if isinstance(owner, TimerState):
                owner._pp = dst
        src.timers.clear()
        src.timers_stale = 0


class TimerState:
    """A stoppable timer (runtime timer); Timer and Ticker extend it.

    ``_seq`` is the seq of the timer's live heap entry, or STALE when it is
    not pending. ``_fire(now)`` runs when it expires, on the M that owns
    the heap; a periodic timer re-arms itself on that same heap.
    """

    __slots__ = ("__weakref__", "_period", "_pp", "_seq", "_when")

    # Held weakly by the heap (delivered on a channel that holds the timer);
    # after_func's timers are strong: they must run though nobody holds them.
    _weak = True

    def __init__(self, period: float = 0.0) -> None:
        self._period = period
        self._seq = STALE
        self._when = 0.0
        self._pp: P | None = None  # the P whose heap holds the live entry

    def _fire(self, now: float) -> None:
        """Deliver the expiry (subclasses say how)."""

    def _arm(self, pp: P, d: float) -> None:
        """Arm the timer on pp's heap (the calling goroutine's P).

        With several Ms the caller holds ``_tlock`` unless the timer is new.
        """
        if sched.bubbles:
            from . import synctest

            b = synctest.current()
            if b is not None:
                synctest.arm(b, self, pp, d)  # on the bubble's fake clock
                return
        when = self._when = monotonic() + d
        self._pp = pp
        seq = self._seq = next(_seqs)
        h = pp.timers
        if (pp.timers_stale > CLEAN_MIN and pp.timers_stale * 4 > len(h)) or len(
            h
        ) >= pp.timers_scan:
            clean(pp)  # a loop that makes and stops timers never reaches checktimers
        if self._weak:
            heappush(h, (when, seq, _runtimer_weak, ref(self)))
        else:
            heappush(h, (when, seq, _runtimer, self))

    def _rearm(self, pp: P, d: float, period: float | None = None) -> bool:
        """Stop, then arm for d from now, as one step (Timer/Ticker.reset):
        with several Ms, under ``_tlock``, as an expiry on another M may race."""
        if sched.multi:
            with _tlock:
                return self._rearm_locked(pp, d, period)
        return self._rearm_locked(pp, d, period)

    def _rearm_locked(self, pp: P, d: float, period: float | None) -> bool:
        was = self._disarm()
        if period is not None:
            self._period = period
        self._arm(pp, d)
        return was

    def stop(self) -> bool:
        """Prevent the timer from firing; True if it was pending.

        As before Go 1.23, a value already sent on a Timer's channel stays.
        """
        if sched.multi:
            with _tlock:
                return self._disarm()
        return self._disarm()

    def _disarm(self) -> bool:
        pending = self._seq != STALE
        self._seq = STALE
        if pending and self._pp is not None:
            self._pp.timers_stale += 1
        return pending


def _runtimer_weak(wr: ReferenceType[TimerState], seq: int) -> None:
    t = wr()
    if t is not None:
        _runtimer(t, seq)


def _runtimer(t: TimerState, seq: int) -> None:
    """A timer's heap entry reached its time (on the heap owner's M)."""
    if sched.multi:
        with _tlock:
            live = _expire(t, seq)
    else:
        live = _expire(t, seq)
    if live:
        t._fire(monotonic())


def _expire(t: TimerState, seq: int) -> bool:
    if t._seq != seq:
        return False  # stopped or reset since this entry was pushed
    period = t._period
    if period > 0:
        # Re-arm at the next period boundary after now; missed ones are
        # dropped, as Go's ticker drops ticks for a slow receiver.
        now = monotonic()
        t._when += period
        if t._when <= now:
            t._when += period * (1 + int((now - t._when) / period))
        pp: P = t._pp  # type: ignore[assignment]
        t._seq = addtimer(pp, t._when, _runtimer_weak, ref(t))
    else:
        t._seq = STALE
    return True


_trace.hot(readytimer)
