"""sync.Mutex (mirrors sync/mutex.go, Go 1.9+ fairness).

The state word holds, as in Go: ``LOCKED`` (bit 0), ``WOKEN`` (bit 1: a
waiter has been woken and is competing, so unlock need not wake another),
``STARVING`` (bit 2) and the number of waiters (from bit 3).

Two modes. In **normal mode** waiters queue FIFO, but a woken waiter does
not own the mutex: it competes with goroutines that just arrived, which
usually win (they are running already). A waiter that fails to get the
mutex for more than 1 ms (``STARVATION_THRESHOLD_S``) switches it to
**starvation mode**: unlock then hands ownership directly to the waiter at
the head of the queue (``semrelease(handoff=True)``), newcomers queue at
the tail without trying, and the mutex goes back to normal mode once a
waiter that got it waited under 1 ms, or was the last one.

Go also spins a few times before queueing, betting that the holder, running
on another CPU, is about to unlock. With greenlets that bet never pays: a
holder on the same M cannot run while the waiter spins, and one on another
M (GOMAXPROCS>1) competes with the spinner for the GIL. So gort never spins.

Locking: with one M, state changes need no atomics (runtime code is never
preempted). With several (``sched.multi``), every state change is made under
``_guard``, a per-mutex thread lock that stands in for Go's CAS and is never
held across a park.
"""

from __future__ import annotations

import threading
from time import monotonic
from types import TracebackType

from ..runtime.panic import outside
from ..runtime.proc import current_g, fatal
from ..runtime.runtime2 import sched
from ..runtime.sema import WAIT_SYNC_MUTEX_LOCK, Sema, semacquire, semrelease, syncpreempt

LOCKED = 1
WOKEN = 2
STARVING = 4
WAITER = 8  # one waiter, in the state word (mutexWaiterShift = 3)
WAITER_SHIFT = 3
STARVATION_THRESHOLD_S = 1e-3  # mutex.go starvationThresholdNs = 1e6

_guards = threading.Lock()


class Mutex:
    """A mutual exclusion lock (Go's sync.Mutex); ``with mu:`` locks it.

    Not reentrant, and not owned: any goroutine may unlock it. Unlocking an
    unlocked Mutex is a fatal error, as in Go.
    """

    __slots__ = ("__weakref__", "_guard", "_sema", "state")

    def __init__(self) -> None:
        self.state = 0
        self._sema = Sema()
        self._guard: threading.Lock | None = None  # made on first use with several Ms

    def __repr__(self) -> str:
        s = self.state
        mode = " starving" if s & STARVING else ""
        held = "locked" if s & LOCKED else "unlocked"
        return f"<gort.Mutex {held}{mode} waiters={s >> WAITER_SHIFT}>"

    def lock(self) -> None:
        """Lock the mutex, parking the goroutine until it is available."""
        s = self.state
        # Literals, not the names: a global costs a lookup.
        if not s and not sched.multi:
            self.state = 1  # LOCKED
            return
        if not s & 5 and not sched.multi:  # free, not owed to a waiter (LOCKED | STARVING)
            self.state = s + 1  # | LOCKED
            return
        self._lock_slow()

    def try_lock(self) -> bool:
        """Lock the mutex if it is free now; never waits (Go 1.18 TryLock)."""
        if sched.multi:
            with self._guardlock():
                return self._try()
        return self._try()

    def _try(self) -> bool:
        old = self.state
        if old & (LOCKED | STARVING):
            return False  # held, or owed to the head waiter
        self.state = old | LOCKED
        return True

    def unlock(self) -> None:
        """Unlock the mutex (it need not have been locked by this goroutine)."""
        s = self.state
        # Normal mode and nobody to wake: LOCKED and no waiter, or LOCKED |
        # WOKEN, not STARVING (a waiter is woken already).
        if s == 1 and not sched.multi:
            self.state = 0
            return
        if s & 7 == 3 and not sched.multi:
            self.state = s - 1
            return
        self._unlock_slow()

    __enter__ = lock

    def __exit__(
        self,
        et: type[BaseException] | None,
        ev: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        s = self.state  # unlock's fast paths, inlined
        if s == 1 and not sched.multi:
            self.state = 0
            return
        if s & 7 == 3 and not sched.multi:
            self.state = s - 1
            return
        self._unlock_slow()

    def _guardlock(self) -> threading.Lock:
        g = self._guard
        if g is None:
            with _guards:
                g = self._guard
                if g is None:
                    g = self._guard = threading.Lock()
        return g

    def _update(self, old: int, new: int) -> bool:
        """Go's CompareAndSwap on the state word."""
        if sched.multi:
            with self._guardlock():
                if self.state != old:
                    return False
                self.state = new
                return True
        if self.state != old:
            return False
        self.state = new
        return True

    def _lock_slow(self) -> None:
        s = self.state
        if not s & (LOCKED | STARVING) and not sched.multi:
            # Free and not owed to a waiter: take it. (Go's fast path is only
            # s == 0; this is its slow path's first try, minus the spinning.)
            self.state = s | LOCKED
            return
        if current_g() is None and self.state & (LOCKED | STARVING):
            raise outside("gort.Mutex.lock")  # it would have to wait
        if sched.multi:
            syncpreempt()  # a preemption point; also ends a stale sched.multi
        wait_start = 0.0
        starving = False
        awoke = False
        old = self.state
        while True:
            new = old
            if not old & STARVING:
                new |= LOCKED  # in starvation mode the mutex is owed to the queue
            if old & (LOCKED | STARVING):
                new += WAITER
            if starving and old & LOCKED:
                new |= STARVING
            if awoke:
                new &= ~WOKEN  # this goroutine was the woken one
            if not self._update(old, new):
                old = self.state
                continue
            if not old & (LOCKED | STARVING):
                return  # locked it
            lifo = wait_start != 0.0  # a waiter that already waited goes first
            if not lifo:
                wait_start = monotonic()
            semacquire(self._sema, lifo, WAIT_SYNC_MUTEX_LOCK, "gort.Mutex.lock", self._abort)
            starving = starving or monotonic() - wait_start > STARVATION_THRESHOLD_S
            old = self.state
            if old & STARVING:
                # Ownership was handed to this goroutine; the state still
                # counts it as a waiter and does not say LOCKED.
                delta = LOCKED - WAITER
                if not starving or old >> WAITER_SHIFT == 1:
                    delta -= STARVING  # back to normal mode
                self._add(delta)
                return
            awoke = True
            old = self.state

    def _add(self, delta: int) -> int:
        if sched.multi:
            with self._guardlock():
                self.state += delta
                return self.state
        self.state += delta
        return self.state

    def _abort(self, woken: bool) -> None:
        """A waiter was unwound while parked (the end of a run)."""
        if woken and self.state & STARVING:
            self._add(LOCKED - WAITER)  # it owned the mutex: take it, then unlock
            self.unlock()
        elif woken:
            # It was the woken waiter (WOKEN is set for it alone): withdraw
            # WOKEN, and pass the wake-up on as unlock would have.
            new = self._add(-WOKEN) if self.state & WOKEN else self.state
            idle = new >> WAITER_SHIFT and not new & (LOCKED | WOKEN | STARVING)
            if idle and self._update(new, (new - WAITER) | WOKEN):
                semrelease(self._sema)
        else:
            self._add(-WAITER)

    def _unlock_slow(self) -> None:
        s = self.state
        if s & (LOCKED | STARVING) == LOCKED and (s < WAITER or s & WOKEN) and not sched.multi:
            self.state = s - LOCKED  # normal mode, and nobody to wake
            return
        if sched.multi:
            syncpreempt()
        new = self._add(-LOCKED)
        if not (new + LOCKED) & LOCKED:
            self._add(LOCKED)  # leave the state as it was for the dump
            fatal("sync: unlock of unlocked mutex")
        if new == 0:
            return
        if new & STARVING:
            # Hand ownership to the head waiter and let it run now. LOCKED
            # stays clear: the waiter sets it; newcomers see STARVING and queue.
            semrelease(self._sema, handoff=True)
            return
        old = new
        while True:
            # Nobody to wake, or a waiter is already woken or the mutex taken.
            if old >> WAITER_SHIFT == 0 or old & (LOCKED | WOKEN | STARVING):
                return
            if self._update(old, (old - WAITER) | WOKEN):
                semrelease(self._sema)
                return
            old = self.state
