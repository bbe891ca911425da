"""sync.WaitGroup (mirrors sync/waitgroup.go).

Go packs the counter and the number of waiters in one 64-bit word so that
a single atomic add sees both; here they are two fields changed together
(under ``_guard`` when several Ms run goroutines). When the counter drops
to zero with waiters, add resets the waiter count and releases the
semaphore once per waiter; a woken waiter that finds the group in use
again knows it was reused too early, and panics as Go does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ..runtime.panic import Panic
from ..runtime.proc import newproc
from ..runtime.runtime2 import sched
from ..runtime.sema import WAIT_SYNC_WAITGROUP_WAIT, Sema, semacquire, semrelease

_guards = threading.Lock()


class WaitGroup:
    """Waits for a collection of goroutines to finish (Go's sync.WaitGroup).

    ``add(n)`` before starting work, ``done()`` when each finishes,
    ``wait()`` until the counter is zero; or ``go(fn, *args)``, which does
    all but the wait (Go 1.25).
    """

    __slots__ = ("__weakref__", "_guard", "_sema", "counter", "waiters")

    def __init__(self) -> None:
        self.counter = 0
        self.waiters = 0
        self._sema = Sema()
        self._guard: threading.Lock | None = None

    def __repr__(self) -> str:
        return f"<gort.WaitGroup counter={self.counter} waiters={self.waiters}>"

    def _g(self) -> threading.Lock:
        g = self._guard
        if g is None:
            with _guards:
                g = self._guard
                if g is None:
                    g = self._guard = threading.Lock()
        return g

    def add(self, delta: int) -> None:
        """Add delta (may be negative) to the counter; at zero, waiters wake."""
        if sched.multi:
            with self._g():
                w = self._add(delta)
        else:
            w = self._add(delta)
        for _ in range(w):
            semrelease(self._sema)

    def _add(self, delta: int) -> int:
        """Apply delta; the number of waiters to wake."""
        v = self.counter + delta
        self.counter = v
        w = self.waiters
        if v < 0:
            raise Panic("sync: negative WaitGroup counter")
        if w and delta > 0 and v == delta:
            raise Panic("sync: WaitGroup misuse: Add called concurrently with Wait")
        if v > 0 or w == 0:
            return 0
        self.waiters = 0
        return w

    def done(self) -> None:
        """Decrement the counter by one."""
        self.add(-1)

    def wait(self) -> None:
        """Block until the counter is zero."""
        if sched.multi:
            with self._g():
                if self.counter == 0:
                    return
                self.waiters += 1
        else:
            if self.counter == 0:
                return
            self.waiters += 1
        semacquire(self._sema, False, WAIT_SYNC_WAITGROUP_WAIT, "gort.WaitGroup.wait", self._abort)
        if self.counter or self.waiters:
            raise Panic("sync: WaitGroup is reused before previous Wait has returned")

    def _abort(self, woken: bool) -> None:
        """A waiter unwound while parked: uncount it (a unit it got is dropped)."""
        if woken:
            return
        if sched.multi:
            with self._g():
                self.waiters -= 1
        else:
            self.waiters -= 1

    def go(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        """add(1), then run fn(*args, **kwargs) in a new goroutine that calls
        done() when fn returns (Go 1.25's WaitGroup.Go)."""
        self.add(1)
        newproc(_run_done, self, fn, args, kwargs)


def _run_done(
    wg: WaitGroup, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    try:
        fn(*args, **kwargs)
    finally:
        wg.add(-1)
