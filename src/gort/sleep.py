"""Go's package time, the part built on runtime timers (time/sleep.go, tick.go).

``sleep`` parks the goroutine on a timer of its P. ``Timer``, ``Ticker`` and
``after`` deliver on a channel of capacity 1 with a non-blocking send, so a
slow receiver never blocks the scheduler and a Ticker drops the ticks its
receiver misses. ``after_func`` runs its function in a new goroutine.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from time import monotonic
from typing import Any
from weakref import ReferenceType, ref

from .runtime import synctest
from .runtime.chan import Chan, selectnbsend
from .runtime.panic import Panic
from .runtime.proc import checkpoint, getg, gopark, gosched, spawn_local
from .runtime.runtime2 import WAIT_SLEEP, G, sched
from .runtime.time import TimerState, addtimer, duration, readytimer
from .runtime.time import _tlock as timers_lock


def now() -> float:
    """The runtime's clock: ``time.monotonic()`` seconds (a synctest bubble's
    fake clock inside one)."""
    if sched.bubbles:
        return synctest.now()
    return monotonic()


def _wake(gp: G, seq: int) -> None:
    """A sleep's timer fired; gp.param holds the seq of the sleep it ends
    (anything else: that sleep was left by an exception, see _unsleep)."""
    if gp.param == seq:
        readytimer(gp)


def _unsleep(gp: G) -> None:
    """gopark's clean-up for sleep: the entry left in the heap goes stale."""
    gp.param = None
    gp.p.timers_stale += 1


def sleep(d: float) -> None:
    """Pause the calling goroutine for at least d seconds."""
    gp = getg("gort.sleep")
    if d.__class__ is not float:
        d = duration(d, "gort.sleep")
    if d <= 0:
        gosched()
        return
    if d != d:
        duration(d, "gort.sleep")  # NaN: ValueError
    if sched.bubbles and (b := synctest.current()) is not None:
        gp.param = synctest.addtimer(b, d, _wake, gp)
        gopark(gp, WAIT_SLEEP, _unsleep, gp)
        return
    gp.param = addtimer(gp.p, monotonic() + d, _wake, gp)
    gopark(gp, WAIT_SLEEP, _unsleep, gp)


class Timer(TimerState):
    """A single event: ``c`` receives the time once, d seconds from now."""

    __slots__ = ("_c", "_ctx", "_fn", "_weak")

    def __init__(
        self,
        d: float,
        *,
        _fn: Callable[[], Any] | None = None,
        _call: str = "gort.Timer",
    ) -> None:
        gp = checkpoint(_call)
        d = duration(d, _call)
        self._period = 0.0  # TimerState's fields, set here: a call less per timer
        self._fn = _fn
        self._weak = _fn is None  # a function timer must run though nobody holds it
        # after_func's goroutine runs in a copy of its caller's context, as
        # gort.go's do; the goroutine running when the timer fires is unrelated.
        self._ctx = contextvars.copy_context() if _fn is not None else None
        self._c: Chan | None = None
        self._arm(gp.p, d)

    @property
    def c(self) -> Chan | None:
        """The channel the time is sent on (None for an after_func timer).

        Made on first use, by the reader or by the expiry: most timers are
        stopped before anyone looks (timeouts that did not happen). The
        channel holds the timer (``Chan.timer``), as the heap does not.
        """
        if self._c is None and self._fn is None:
            with timers_lock:  # the reader and the expiry may race here
                if self._c is None:
                    c = Chan(1)
                    c.timer = self
                    self._c = c
        return self._c

    def _fire(self, now: float) -> None:
        if self._fn is None:
            selectnbsend(self.c, now, readytimer)  # type: ignore[arg-type]
        else:
            spawn_local(self._pp, self._fn, self._ctx)  # type: ignore[arg-type]

    def reset(self, d: float) -> bool:
        """Re-arm the timer for d from now; True if it was pending."""
        gp = getg("gort.Timer.reset")
        return self._rearm(gp.p, duration(d, "gort.Timer.reset"))


class Ticker(TimerState):
    """Delivers the time on ``c`` every d seconds; drops ticks for slow readers."""

    __slots__ = ("c",)

    def __init__(self, d: float) -> None:
        gp = checkpoint("gort.Ticker")
        if duration(d, "gort.Ticker") <= 0:
            raise Panic("non-positive interval for NewTicker")
        super().__init__(period=d)
        self.c = Chan(1)
        self.c.timer = self  # the channel keeps the ticker: the heap holds it weakly
        self._arm(gp.p, d)

    def _fire(self, now: float) -> None:
        selectnbsend(self.c, now, readytimer)

    def stop(self) -> None:  # type: ignore[override]
        """Turn the ticker off; no more ticks are sent (Go's Ticker.Stop)."""
        super().stop()

    def reset(self, d: float) -> None:
        """Stop the ticker and restart it with period d."""
        gp = getg("gort.Ticker.reset")
        if duration(d, "gort.Ticker.reset") <= 0:
            raise Panic("non-positive interval for Ticker.Reset")
        self._rearm(gp.p, d, period=d)


def _after_fire(wr: ReferenceType[Chan], seq: int) -> None:
    c = wr()
    if c is not None:  # else the program dropped the channel: nobody can receive
        selectnbsend(c, monotonic(), readytimer)


def after(d: float) -> Chan:
    """A channel that receives the time once, d seconds from now.

    No Timer object: the heap holds the channel weakly, so a timeout the
    program dropped costs nothing until its entry is swept.
    """
    gp = checkpoint("gort.after")
    d = duration(d, "gort.after")
    c = Chan(1)
    if sched.bubbles and (b := synctest.current()) is not None:
        synctest.addtimer(b, d, synctest.after_fire, (b, ref(c)))
        return c
    addtimer(gp.p, monotonic() + d, _after_fire, ref(c))
    return c


def after_func(d: float, fn: Callable[[], Any]) -> Timer:
    """Run fn in its own goroutine after d; stop() on the result prevents it."""
    return Timer(d, _fn=fn, _call="gort.after_func")
