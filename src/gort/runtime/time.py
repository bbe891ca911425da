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
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from heapq import heapify, heappop, heappush
from time import monotonic
from typing import Any

from .runtime2 import P, sched

_seqs = itertools.count(1)
_tlock = threading.Lock()  # timer state changes with several Ms; lazy timer channels

# A heap entry: (when, seq, f, arg); f(arg, seq) runs it.
Entry = tuple[float, int, Callable[[Any, int], None], Any]

STALE = -1
CLEAN_MIN = 64  # stale entries worth a rebuild once they are a quarter of the heap


def addtimer(pp: P, when: float, f: Callable[[Any, int], None], arg: Any) -> int:
    """Push a timer entry on pp's heap (pp's M only); returns its seq."""
    seq = next(_seqs)
    heappush(pp.timers, (when, seq, f, arg))
    return seq


def checktimers(pp: P) -> None:
    """Run pp's due timers. pp's M only; call with a non-empty heap."""
    h = pp.timers
    now = monotonic()
    while h and h[0][0] <= now:
        _, seq, f, arg = heappop(h)
        f(arg, seq)
    if pp.timers_stale > CLEAN_MIN and pp.timers_stale * 4 > len(h):
        clean(pp)


def clean(pp: P) -> None:
    """Drop stale entries (stopped or reset timers) from pp's heap."""
    h = pp.timers
    h[:] = [e for e in h if not _is_stale(e)]
    heapify(h)
    pp.timers_stale = 0


def _is_stale(e: Entry) -> bool:
    owner = e[3]
    return isinstance(owner, TimerState) and owner._seq != e[1]


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
    return max(0.0, when - monotonic())


def movetimers(src: P, dst: P) -> None:
    """Move a retired P's live timers onto dst's heap (Go's moveTimers).

    On dst's M; src's M has ended, so nothing else touches src's heap.
    """
    with _tlock:  # a concurrent stop reads t._pp
        for e in src.timers:
            if _is_stale(e):
                continue
            heappush(dst.timers, e)
            if isinstance(e[3], TimerState):
                e[3]._pp = dst
        src.timers.clear()
        src.timers_stale = 0


class TimerState:
    """A stoppable timer (runtime timer); Timer and Ticker extend it.

    ``_seq`` is the seq of the timer's live heap entry, or STALE when it is
    not pending. ``_fire(now)`` runs when it expires, on the M that owns
    the heap; a periodic timer re-arms itself on that same heap.
    """

    __slots__ = ("_period", "_pp", "_seq", "_when")

    def __init__(self, period: float = 0.0) -> None:
        self._period = period
        self._seq = STALE
        self._when = 0.0
        self._pp: P | None = None  # the P whose heap holds the live entry

    def _fire(self, now: float) -> None:
        """Deliver the expiry (subclasses say how)."""

    def _arm(self, pp: P, d: float) -> None:
        """Arm the timer on pp's heap (the calling goroutine's P)."""
        when = self._when = monotonic() + d
        self._pp = pp
        seq = self._seq = next(_seqs)
        h = pp.timers
        if pp.timers_stale > CLEAN_MIN and pp.timers_stale * 4 > len(h):
            clean(pp)  # a loop that makes and stops timers never reaches checktimers
        heappush(h, (when, seq, _runtimer, self))

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
        t._seq = addtimer(t._pp, t._when, _runtimer, t)  # type: ignore[arg-type]
    else:
        t._seq = STALE
    return True
