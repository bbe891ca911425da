"""sync.Pool (mirrors sync/pool.go): per-P caches, emptied by the collector.

Each P has a ``private`` slot (only that P's goroutines touch it: a started
goroutine never leaves its P, and gort code is not preempted, so no lock)
and a ``shared`` deque: its owner pushes and pops at the right end, other Ps
steal from the left (each deque operation is atomic). Go's lock-free
poolChain becomes a deque for the same reason.

As in Go (1.13+), a collection moves every pool's caches to a *victim*
cache and drops the previous victims, so an object survives one collection
unused and is freed by the second. Python's collector runs generation 0
every few hundred allocations; only full collections (generation 2, which
``gc.collect()`` runs) count as Go's GC cycles here, or a pool would be
emptied faster than it could help. The callback swaps whole lists, so a
get or put running on another thread at that moment works on the old lists
and at worst drops an object, which a Pool may always do.
"""

from __future__ import annotations

import gc
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

from ..runtime.proc import current_g
from ..runtime.runtime2 import sched


class _PoolLocal:
    __slots__ = ("private", "shared")

    def __init__(self) -> None:
        self.private: Any = None  # owner P only
        self.shared: deque[Any] = deque()  # owner: append/pop; others: popleft


_all_pools: weakref.WeakSet[Pool] = weakref.WeakSet()


class Pool:
    """A cache of reusable objects (Go's sync.Pool).

    ``get()`` returns a cached object, or ``new()`` if there is none (None
    without ``new``); ``put(x)`` offers x for reuse. Any object may be
    dropped at any time, in particular by a full garbage collection: use a
    Pool to save allocations, never to keep state.
    """

    __slots__ = ("__weakref__", "_gen", "_local", "_victim", "new")

    def __init__(self, new: Callable[[], Any] | None = None) -> None:
        self.new = new
        self._local: list[_PoolLocal] | None = None
        self._victim: list[_PoolLocal] | None = None
        self._gen = 0  # the run (sched.generation) the caches were made for

    def _pin(self) -> tuple[list[_PoolLocal], int]:
        """The caches and the calling goroutine's P id."""
        gp = current_g()
        pid = gp.p.id if gp is not None and gp.p is not None else 0
        loc = self._local
        if loc is None or self._gen != sched.generation or pid >= len(loc):
            loc = self._pin_slow(pid)
        return loc, pid

    def _pin_slow(self, pid: int) -> list[_PoolLocal]:
        """New caches: first use, a new run, or more Ps (Go drops the old array too)."""
        if self._gen != sched.generation:
            self._victim = None
        n = max(pid + 1, len(sched.allp), 1)
        loc = [_PoolLocal() for _ in range(n)]
        self._local = loc
        self._gen = sched.generation
        _all_pools.add(self)
        return loc

    def put(self, x: Any) -> None:
        """Add x to the pool (None is ignored)."""
        if x is None:
            return
        loc, pid = self._pin()
        lp = loc[pid]
        if lp.private is None:
            lp.private = x
        else:
            lp.shared.append(x)

    def get(self) -> Any:
        """An object from the pool, else ``new()``, else None."""
        loc, pid = self._pin()
        lp = loc[pid]
        x = lp.private
        lp.private = None
        if x is None:
            try:
                x = lp.shared.pop()
            except IndexError:
                x = self._get_slow(loc, pid)
        if x is None and self.new is not None:
            x = self.new()
        return x

    def _get_slow(self, loc: list[_PoolLocal], pid: int) -> Any:
        """Steal from the other Ps, then try the victim cache."""
        n = len(loc)
        for i in range(1, n):
            try:
                return loc[(pid + i) % n].shared.popleft()
            except IndexError:
                pass
        victim = self._victim
        if not victim:
            return None
        if pid < len(victim):
            lp = victim[pid]
            x = lp.private
            if x is not None:
                lp.private = None
                return x
        for lp in victim:
            try:
                return lp.shared.popleft()
            except IndexError:
                pass
        self._victim = None  # empty: later misses need not look again
        return None


def pool_cleanup() -> None:
    """Go's poolCleanup: primary caches become victims, old victims go."""
    for p in list(_all_pools):
        p._victim = p._local
        p._local = None
        if p._victim is None:
            _all_pools.discard(p)


def _gc_callback(phase: str, info: dict[str, int]) -> None:
    if phase == "start" and info.get("generation") == 2:
        pool_cleanup()


gc.callbacks.append(_gc_callback)
