"""A weighted semaphore (mirrors golang.org/x/sync/semaphore).

Waiters are served strictly in FIFO order: a waiter for k units at the head
blocks every later waiter, even one that would fit, so a large request is
never starved by a stream of small ones. Each waiter waits on its own
channel, so ``acquire`` can also select on a context's ``done()``.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from ..runtime.chan import Chan, nilchan
from ..runtime.panic import Panic
from ..runtime.select import default, select
from .mutex import Mutex

if TYPE_CHECKING:
    from ..context import Context


class _Waiter:
    __slots__ = ("n", "ready")

    def __init__(self, n: int) -> None:
        self.n = n
        self.ready = Chan()  # closed when the units are granted


class Semaphore:
    """``Semaphore(n)``: n units; ``acquire(k)`` takes k, ``release(k)`` gives back.

    ``acquire(k, ctx)`` gives up when ctx is done, raising ``ctx.err()``
    (``gort.Canceled`` or ``gort.DeadlineExceeded``) with no units taken.
    """

    __slots__ = ("__weakref__", "_mu", "_waiters", "cur", "size")

    def __init__(self, n: int) -> None:
        if n < 0:
            raise ValueError("semaphore: negative size")
        self.size = n
        self.cur = 0  # units held; self._mu
        self._mu = Mutex()
        self._waiters: deque[_Waiter] = deque()  # self._mu

    def __repr__(self) -> str:
        return f"<gort.Semaphore {self.cur}/{self.size} waiters={len(self._waiters)}>"

    def acquire(self, k: int = 1, ctx: Context | None = None) -> None:
        """Take k units, waiting (FIFO) until they are free or ctx is done."""
        done = nilchan if ctx is None else ctx.done()
        mu = self._mu
        mu.lock()
        if done is not nilchan and select(done.recv, default)[0] == 0:
            # ctx was done before the units could be taken: fail even if
            # they are free, as x/sync does.
            mu.unlock()
            _raise_err(ctx)
        if self.size - self.cur >= k and not self._waiters:
            self.cur += k
            mu.unlock()
            return
        if k > self.size:
            # Can never succeed: wait for ctx (forever without one).
            mu.unlock()
            done.recv()
            _raise_err(ctx)
        w = _Waiter(k)
        self._waiters.append(w)
        mu.unlock()
        if done is nilchan:
            w.ready.recv()
            return
        if select(done.recv, w.ready.recv)[0] == 1:
            return
        mu.lock()
        if select(w.ready.recv, default)[0] == 0:
            # Granted after ctx was done: give the units back.
            self.cur -= k
            self._notify_waiters()
        else:
            front = self._waiters[0] is w
            self._waiters.remove(w)
            if front and self.size > self.cur:
                self._notify_waiters()  # it was blocking the queue
        mu.unlock()
        _raise_err(ctx)

    def try_acquire(self, k: int = 1) -> bool:
        """Take k units if they are free now and nobody waits; never waits."""
        with self._mu:
            ok = self.size - self.cur >= k and not self._waiters
            if ok:
                self.cur += k
            return ok

    def release(self, k: int = 1) -> None:
        """Give back k units, waking the waiters they satisfy, in order."""
        with self._mu:
            self.cur -= k
            if self.cur < 0:
                self.cur += k
                raise Panic("semaphore: released more than held")
            self._notify_waiters()

    def _notify_waiters(self) -> None:
        """Grant units to waiters from the head while they fit. self._mu held."""
        q = self._waiters
        while q:
            w = q[0]
            if self.size - self.cur < w.n:
                break  # the head does not fit: nobody behind it may overtake
            self.cur += w.n
            q.popleft()
            w.ready.close()


def _raise_err(ctx: Context | None) -> None:
    err = ctx.err() if ctx is not None else None
    raise err if err is not None else Panic("semaphore: context done without an error")
