"""Per-P caches of spans (Go's mcache.go).

Each P has an mcache (made on the P's first allocation): for every size
class, the span it allocates from (``alloc``) and that span's queue of free
Buffers (``lists``, what the allocation fast path pops from). Allocation
takes no lock: pop a free Buffer of the cached span; when there is none,
``nextfree`` (malloc.py) hands out a slot the span never used, and once the
span is full, ``refill`` gives it back to its mcentral and takes another (a whole
span per lock, as in Go). Only the P's M refills (a P's M is the only
thread that ever runs on it in gort, which is what makes "only the owner
touches it" hold without Go's stopped world). The pop itself is atomic, so
a thread that reads a P's ``lists`` a moment too long (the one-P shortcut
in malloc.py) takes a Buffer of a span cached there, which is harmless;
``refill`` and ``release_all`` point ``lists`` at an empty queue before
they give a span back, so nobody pops from a span no mcache holds.

``mcache0`` is the cache for code that runs on no P: before or after
``gort.run``, or on a thread the runtime did not start. Go has an
``mcache0`` for its bootstrap too; gort's takes a lock, so any thread may
use it.

A P that gomaxprocs removes is destroyed by its own M: findrunnable calls
``freemcache`` on that M whenever the P is dead (Go's ``p.destroy``), and
the run's teardown frees every P's cache once no M runs. Freeing gives
every span back to its mcentral.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from .mcentral import MCentral
from .mfinal import finq, runfinq
from .mheap import MSpan, mheap_
from .sizeclasses import NUM_SIZE_CLASSES


def _empty_span() -> MSpan:
    """Go's emptymspan: a span with no free slot, so the first alloc refills."""
    span = MSpan.__new__(MSpan)
    span.free = deque()  # stays empty: no Buffer belongs to this span
    span.freeindex = span.nelems = 0
    span.sizeclass = 0
    return span


EMPTY_SPAN = _empty_span()

central = [MCentral(i, mheap_) for i in range(NUM_SIZE_CLASSES)]
"""mheap_.central in Go: one mcentral per size class (index 0 unused)."""


class MCache:
    """Counts nothing: a span counts its frees (see mstats.py)."""

    __slots__ = ("alloc", "lists")

    def __init__(self) -> None:
        self.alloc: list[MSpan] = [EMPTY_SPAN] * NUM_SIZE_CLASSES  # span per size class
        self.lists: list[deque[Any]] = [EMPTY_SPAN.free] * NUM_SIZE_CLASSES  # alloc[sc].free

    def refill(self, sizeclass: int) -> MSpan:
        """Swap the exhausted span of sizeclass for one with a free slot."""
        if finq:
            runfinq()  # dropped Buffers first: their slots may be this class's
        old = self.alloc[sizeclass]
        self.lists[sizeclass] = EMPTY_SPAN.free
        if old is not EMPTY_SPAN:
            self.alloc[sizeclass] = EMPTY_SPAN
            central[sizeclass].uncache_span(old)
        span = central[sizeclass].cache_span(self)
        self.alloc[sizeclass] = span
        self.lists[sizeclass] = span.free
        return span

    def release_all(self) -> None:
        """Give every cached span back to its mcentral (mcache.releaseAll)."""
        for sc, span in enumerate(self.alloc):
            if span is not EMPTY_SPAN:
                self.lists[sc] = EMPTY_SPAN.free
                self.alloc[sc] = EMPTY_SPAN
                central[sc].uncache_span(span)


mcache0 = MCache()
mcache0_lock = threading.Lock()  # held around every use of mcache0


def freemcache(pp: Any) -> None:
    """Destroy P pp's mcache (Go's p.destroy: freemcache(pp.mcache)).

    Spans go back to their mcentrals; the P makes a new mcache if it
    allocates again. Only pp's own M may call it, or a
    caller sure that no thread runs on pp (teardown).
    """
    mc = pp.mcache
    if mc is None:
        return
    pp.mcache = None
    mc.release_all()
