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

from .runtime.chan import Chan, selectnbsend
from .runtime.panic import Panic
from .runtime.proc import checkpoint, getg, gopark, gosched, ready, spawn_local
from .runtime.runtime2 import WAIT_SLEEP, G
from .runtime.time import TimerState, addtimer
from .runtime.time import _tlock as timers_lock


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


class Timer(TimerState):
    """A single event: ``c`` receives the time once, d seconds from now."""

    __slots__ = ("_c", "_ctx", "_fn")

    def __init__(
        self,
        d: float,
        *,
        _fn: Callable[[], Any] | None = None,
        _call: str = "gort.Timer",
    ) -> None:
        gp = checkpoint(_call)
        self._period = 0.0  # TimerState's fields, set here: a call less per timer
        self._fn = _fn
        # after_func's goroutine runs in a copy of its caller's context, as
        # gort.go's do; the goroutine running when the timer fires is unrelated.
        self._ctx = contextvars.copy_context() if _fn is not None else None
        self._c: Chan | None = None
        self._arm(gp.p, d)

    @property
    def c(self) -> Chan | None:
        """The channel the time is sent on (None for an after_func timer).

        Made on first use, by the reader or by the expiry: most timers are
        stopped before anyone looks (timeouts that did not happen).
        """
        if self._c is None and self._fn is None:
            with timers_lock:  # the reader and the expiry may race here
                if self._c is None:
                    self._c = Chan(1)
        return self._c

    def _fire(self, now: float) -> None:
        if self._fn is None:
            selectnbsend(self.c, now, next=False)  # type: ignore[arg-type]
        else:
            spawn_local(self._pp, self._fn, self._ctx)  # type: ignore[arg-type]

    def reset(self, d: float) -> bool:
        """Re-arm the timer for d from now; True if it was pending."""
        gp = getg("gort.Timer.reset")
        was = super().stop()
        self._arm(gp.p, d)
        return was


class Ticker(TimerState):
    """Delivers the time on ``c`` every d seconds; drops ticks for slow readers."""

    __slots__ = ("c",)

    def __init__(self, d: float) -> None:
        gp = checkpoint("gort.Ticker")
        if d <= 0:
            raise Panic("non-positive interval for NewTicker")
        super().__init__(period=d)
        self.c = Chan(1)
        self._arm(gp.p, d)

    def _fire(self, now: float) -> None:
        selectnbsend(self.c, now, next=False)

    def stop(self) -> None:  # type: ignore[override]
        """Turn the ticker off; no more ticks are sent (Go's Ticker.Stop)."""
        super().stop()

    def reset(self, d: float) -> None:
        """Stop the ticker and restart it with period d."""
        gp = getg("gort.Ticker.reset")
        if d <= 0:
            raise Panic("non-positive interval for Ticker.Reset")
        super().stop()
        self._period = d
        self._arm(gp.p, d)


def after(d: float) -> Chan:
    """A channel that receives the time once, d seconds from now."""
    c = Timer(d, _call="gort.after").c
    assert c is not None
    return c


def after_func(d: float, fn: Callable[[], Any]) -> Timer:
    """Run fn in its own goroutine after d; stop() on the result prevents it."""
    return Timer(d, _fn=fn, _call="gort.after_func")
