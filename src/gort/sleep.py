"""Go's package time, the part built on runtime timers (time/sleep.go, tick.go).

``sleep`` parks the goroutine on a timer of its P. ``Timer``, ``Ticker`` and
``after`` deliver on a channel of capacity 1 with a non-blocking send, so a
slow receiver never blocks the scheduler and a Ticker drops the ticks its
receiver misses. ``after_func`` runs its function in a new goroutine.
"""

from __future__ import annotations

from collections.abc import Callable
from time import monotonic
from typing import Any

from .runtime.chan import Chan, selectnbsend
from .runtime.panic import Panic
from .runtime.proc import getg, gopark, gosched, ready, spawn_local
from .runtime.runtime2 import WAIT_SLEEP, G
from .runtime.time import TimerState, addtimer


def now() -> float:
    """The runtime's clock: ``time.monotonic()`` seconds."""
    return monotonic()


def _wake(gp: G, seq: int) -> None:
    ready(gp, next=False)  # timers fire from the scheduler: keep their order


def sleep(d: float) -> None:
    """Pause the calling goroutine for at least d seconds."""
    gp = getg("gort.sleep")
    if d <= 0:
        gosched()
        return
    pp = gp.p
    assert pp is not None
    addtimer(pp, monotonic() + d, _wake, gp)
    gopark(gp, WAIT_SLEEP)


def _sendtime(c: Chan, t: float) -> None:
    """Timer channels have capacity 1: a tick nobody has room for is dropped."""
    selectnbsend(c, t, next=False)


class Timer:
    """A single event: ``c`` receives the time once, d seconds from now."""

    __slots__ = ("_t", "c")

    def __init__(self, d: float, *, _fn: Callable[[], Any] | None = None) -> None:
        gp = getg("gort.Timer")
        if _fn is None:
            self.c: Chan | None = Chan(1)
            c = self.c
            self._t = TimerState(lambda t: _sendtime(c, t))
        else:
            self.c = None
            fn = _fn
            self._t = TimerState(lambda t: spawn_local(self._t.pp, fn))  # type: ignore[arg-type]
        assert gp.p is not None
        self._t.start(gp.p, d)

    def stop(self) -> bool:
        """Prevent the timer from firing; True if it was pending.

        As before Go 1.23, a value already in ``c`` stays there.
        """
        return self._t.stop()

    def reset(self, d: float) -> bool:
        """Re-arm the timer for d from now; True if it was pending."""
        gp = getg("gort.Timer.reset")
        was = self._t.stop()
        assert gp.p is not None
        self._t.start(gp.p, d)
        return was


class Ticker:
    """Delivers the time on ``c`` every d seconds; drops ticks for slow readers."""

    __slots__ = ("_t", "c")

    def __init__(self, d: float) -> None:
        gp = getg("gort.Ticker")
        if d <= 0:
            raise Panic("non-positive interval for NewTicker")
        self.c = Chan(1)
        c = self.c
        self._t = TimerState(lambda t: _sendtime(c, t), period=d)
        assert gp.p is not None
        self._t.start(gp.p, d)

    def stop(self) -> None:
        """Turn the ticker off; no more ticks are sent."""
        self._t.stop()

    def reset(self, d: float) -> None:
        """Stop the ticker and restart it with period d."""
        gp = getg("gort.Ticker.reset")
        if d <= 0:
            raise Panic("non-positive interval for Ticker.Reset")
        self._t.stop()
        self._t.period = d
        assert gp.p is not None
        self._t.start(gp.p, d)


def after(d: float) -> Chan:
    """A channel that receives the time once, d seconds from now."""
    c = Timer(d).c
    assert c is not None
    return c


def after_func(d: float, fn: Callable[[], Any]) -> Timer:
    """Run fn in its own goroutine after d; stop() on the result prevents it."""
    return Timer(d, _fn=fn)
