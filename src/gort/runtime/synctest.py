"""Bubbles with a fake clock (mirrors runtime/synctest.go, Go 1.25).

``synctest.run(fn)`` starts fn in a new goroutine inside a *bubble*; every
goroutine it starts, directly or through ``after_func``, joins the bubble.
Membership travels with the goroutine's context (a private ContextVar that
``gort.go`` copies like any other), so the scheduler's hot paths know
nothing about bubbles.

A bubble has its own clock and timer heap. Inside it ``gort.now()``,
``sleep``, ``after``, ``Timer``, ``Ticker``, ``after_func`` and context
deadlines use the bubble's clock, which stands still until every goroutine
of the bubble is *durably blocked* (on a channel, a select, a sleep, a
Cond, a WaitGroup: something only another bubble goroutine or a bubble
timer can end; not a Mutex, a system call or I/O). Then, in this order:

1. a goroutine in ``synctest.wait()`` is woken (every other is blocked);
2. else the clock jumps to the earliest bubble timer, which fires;
3. else, if goroutines remain, the bubble is deadlocked: ``run`` panics.

When the last goroutine of the bubble has ended, ``run`` returns.

The check runs on an M that has nothing else to run (findrunnable's
``idle_hook``, before the M sleeps), under the bubble's lock: a bubble
advances when its goroutines are blocked and nothing else is runnable on
that P. Timers fire on that M: the goroutines they wake are readied or
injected as from any timer.
"""

from __future__ import annotations

import contextvars
import itertools
import threading
from collections.abc import Callable, Iterator
from heapq import heappop, heappush
from time import monotonic
from typing import Any
from weakref import ReferenceType, WeakKeyDictionary

from .chan import Chan, selectnbsend
from .panic import Panic
from .proc import getg, gopark, newproc
from .runtime2 import G_DEAD, G_WAITING, G, P, sched
from .time import STALE, TimerState, readytimer
from .traceback import format_goroutine

WAIT_SYNCTEST = "synctest.Wait"
WAIT_SYNCTEST_RUN = "synctest.Run"

# Waits that only the bubble itself can end (Go's "durably blocked").
DURABLE = frozenset(
    {
        "chan receive",
        "chan send",
        "chan receive (nil chan)",
        "chan send (nil chan)",
        "select",
        "select (no cases)",
        "sleep",
        "sync.Cond.Wait",
        "sync.WaitGroup.Wait",
        WAIT_SYNCTEST,
    }
)

# Where a bubble's clock starts: Go's synctest starts at 2000-01-01 00:00 UTC
# (946,684,800 s of Unix time). A fixed start makes a bubble's times
# reproducible, and whole seconds keep sums of round durations exact.
EPOCH = 946_684_800.0

DEADLOCK = "deadlock: all goroutines in bubble are blocked"
DEADLOCK_MAIN_EXITED = "deadlock: main bubble goroutine has exited but blocked goroutines remain"

_bubble: contextvars.ContextVar[Bubble | None] = contextvars.ContextVar(
    "gort.synctest.bubble", default=None
)
_ids = itertools.count(1)


class Bubble:
    """One synctest.run: its clock, its timers, who waits on it."""

    def __init__(self) -> None:
        self.id = next(_ids)
        self.now = EPOCH  # stands still until the bubble advances it
        self.timers: list[tuple[float, int, Callable[[Any, int], None], Any]] = []
        self.seq = itertools.count(1)
        self.lock = threading.Lock()  # timers, waiter, the advance
        self.caller: G | None = None  # the goroutine in run(), outside the bubble
        self.root: G | None = None  # fn's goroutine
        self.root_done = False
        self.waiter: G | None = None  # the goroutine in wait()
        self.error: str = ""  # run's panic: the deadlock text
        self.dump: str = ""
        self.finished = False

    def members(self) -> list[G]:
        out = []
        for gp in list(sched.allgs.values()):
            if gp.status != G_DEAD and gp.ctx.get(_bubble) is self:
                out.append(gp)
        return out

    def push(self, when: float, f: Callable[[Any, int], None], arg: Any) -> int:
        """A timer entry on the bubble's heap (bubble lock held)."""
        seq = next(self.seq)
        heappush(self.timers, (when, seq, f, arg))
        return seq


def current() -> Bubble | None:
    """The calling goroutine's bubble (only asked when a bubble exists)."""
    return _bubble.get()


def now() -> float:
    b = _bubble.get()
    return monotonic() if b is None else b.now


def _durable(gp: G) -> bool:
    return gp.status == G_WAITING and gp.waitreason in DURABLE


# ---------------------------------------------------------------------------
# Timers of bubble goroutines (called by sleep.py and time.py when
# sched.bubbles is non-zero and the caller is in a bubble).


def addtimer(b: Bubble, d: float, f: Callable[[Any, int], None], arg: Any) -> int:
    with b.lock:
        return b.push(b.now + d, f, arg)


# A bubble timer -> its bubble, for the periodic re-arm. Timers are weakly
# referenceable; an entry goes when the timer does.
_timer_bubble: WeakKeyDictionary[TimerState, Bubble] = WeakKeyDictionary()


def arm(b: Bubble, t: TimerState, pp: P, d: float) -> None:
    """TimerState._arm for a bubble timer: on the bubble's heap."""
    _timer_bubble[t] = b
    with b.lock:
        t._pp = pp
        t._when = b.now + d
        t._seq = b.push(t._when, _runtimer, t)


def _runtimer(t: TimerState, seq: int) -> None:
    """A bubble timer's entry came due (bubble lock held, clock advanced)."""
    if t._seq != seq:
        return  # stopped or reset
    b: Bubble = _timer_bubble[t]
    if t._period > 0:
        t._when += t._period
        t._seq = b.push(t._when, _runtimer, t)
    else:
        t._seq = STALE
    t._fire(b.now)


def after_fire(arg: tuple[Bubble, ReferenceType[Chan]], seq: int) -> None:
    b, wr = arg
    c = wr()
    if c is not None:
        selectnbsend(c, b.now, readytimer)


# ---------------------------------------------------------------------------
# Bubble channels: made in a bubble, usable only there (Go's rule). Chan's
# own methods stay as they are; a channel made in a bubble becomes a
# BubbleChan, whose methods check first (select checks in its parse).

_chan_bubble: WeakKeyDictionary[Chan, Bubble] = WeakKeyDictionary()


class BubbleChan(Chan):
    """A channel made inside a synctest bubble."""

    __slots__ = ()

    def send(self, v: Any) -> None:
        check(self, "send on")
        Chan.send(self, v)

    def recv(self, _ok: bool = False) -> Any:
        check(self, "receive on")
        return Chan.recv(self, _ok)

    def __iter__(self) -> Iterator[Any]:
        check(self, "receive on")
        return Chan.__iter__(self)

    def close(self) -> None:
        check(self, "close of")
        Chan.close(self)


def adopt(c: Chan) -> None:
    """Chan.__init__ while a bubble exists: claim c for the caller's bubble."""
    b = _bubble.get()
    if b is not None:
        _chan_bubble[c] = b
        c.__class__ = BubbleChan


def check(c: Chan, op: str) -> None:
    """Panic unless the caller is in c's bubble (Go's message)."""
    if _bubble.get() is not _chan_bubble.get(c):
        raise Panic(f"{op} synctest channel from outside bubble")


# ---------------------------------------------------------------------------
# run and wait.


def run(fn: Callable[[], Any]) -> None:
    """gort.synctest.run: fn and its goroutines in a new bubble."""
    gp = getg("gort.synctest.run")
    if not callable(fn):
        raise TypeError(f"gort.synctest.run: {fn!r} is not callable")
    if _bubble.get() is not None:
        raise Panic("synctest.Run called from within a synctest bubble")
    b = Bubble()
    b.caller = gp
    with sched.lock:
        sched.bubbles.append(b)
        sched.idle_hook = idle
    token = _bubble.set(b)
    try:
        newproc(_root, b, fn)  # the new G copies this context: it is in b
    finally:
        _bubble.reset(token)
    try:
        while not b.finished:
            gopark(gp, WAIT_SYNCTEST_RUN)
    finally:
        with sched.lock:
            sched.bubbles.remove(b)
    if b.error:
        p = Panic(b.error)
        if b.dump:
            p.add_note(b.dump)
        raise p


def _root(b: Bubble, fn: Callable[[], Any]) -> None:
    b.root = getg("gort.synctest.run")
    try:
        fn()
    finally:
        b.root_done = True


def wait() -> None:
    """gort.synctest.wait: until every other bubble goroutine is durably blocked."""
    gp = getg("gort.synctest.wait")
    b = _bubble.get()
    if b is None:
        raise Panic("goroutine is not in a bubble")
    with b.lock:
        if b.waiter is not None:
            raise Panic("wait already in progress")
        if all(_durable(g) for g in b.members() if g is not gp):
            return
        b.waiter = gp
    try:
        gopark(gp, WAIT_SYNCTEST)
    finally:
        with b.lock:
            if b.waiter is gp:
                b.waiter = None


# ---------------------------------------------------------------------------
# The advance, on an idle M.


def idle(pp: P) -> bool:
    """findrunnable's idle_hook: move any bubble that can move. True if
    something became runnable (findrunnable looks again)."""
    progress = False
    for b in list(sched.bubbles):
        if _step(b, pp):
            progress = True
    if progress:
        woken = pp.timerwoken
        if woken:
            woken.reverse()
            pp.runq.extendleft(woken)
            woken.clear()
    return progress


def _step(b: Bubble, pp: P) -> bool:
    with b.lock:
        if b.finished:
            return False
        members = b.members()
        if not members:
            return _finish(b, "")
        waiter = b.waiter
        if not all(_durable(g) for g in members):
            return False
        if waiter is not None:
            b.waiter = None
            readytimer(waiter)
            return True
        h = b.timers
        while h and _stale(h[0]):
            heappop(h)
        if h:
            b.now = max(b.now, h[0][0])
            while h and h[0][0] <= b.now:
                _, seq, f, arg = heappop(h)
                if isinstance(arg, TimerState):
                    arg._pp = pp  # after_func's goroutine starts on this M's P
                f(arg, seq)
            return True
        msg = DEADLOCK_MAIN_EXITED if b.root_done else DEADLOCK
        dump = "\n\n".join(format_goroutine(g) for g in sorted(members, key=_goid))
        return _finish(b, msg, f"goroutines of the bubble:\n\n{dump}")


def _finish(b: Bubble, error: str, dump: str = "") -> bool:
    b.finished = True
    b.error = error
    b.dump = dump
    caller = b.caller
    if caller is not None and caller.status == G_WAITING:
        readytimer(caller)
    return True


def _stale(e: tuple[float, int, Callable[[Any, int], None], Any]) -> bool:
    arg = e[3]
    if isinstance(arg, TimerState):
        return arg._seq != e[1]
    if arg.__class__ is G:
        return arg.param != e[1]  # type: ignore[no-any-return]  # a sleep's entry
    return False


def _goid(gp: G) -> int:
    return gp.goid
