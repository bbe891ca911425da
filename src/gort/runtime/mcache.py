"""Per-P caches of spans (Go's mcache.go).

Each P has an mcache (made on the P's first allocation): for every size
class, the span it allocates from. Only the P's own M touches it, so
allocation takes no lock: pop a slot from the cached span's free list; when
that list is empty, ``refill`` gives the span back to its mcentral and takes
another (a whole span per lock, as in Go). A P's M is the only thread that
ever runs on it in gort, which is what makes "only the owner touches it"
hold without Go's stopped world.

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
from typing import Any

from .mcentral import MCentral
from .mfinal import finq, runfinq
from .mheap import MSpan, mheap_
from .sizeclasses import NUM_SIZE_CLASSES


def _empty_span() -> MSpan:
    """Go's emptymspan: a span with no free slot, so the first alloc refills."""
    span = MSpan.__new__(MSpan)
    span.freelist = []
    span.sizeclass = 0
    return span


EMPTY_SPAN = _empty_span()

central = [MCentral(i, mheap_) for i in range(NUM_SIZE_CLASSES)]
"""mheap_.central in Go: one mcentral per size class (index 0 unused)."""


class MCache:
    """Counts nothing: a span's generation stamps count its frees (see mstats.py)."""

    __slots__ = ("alloc",)

    def __init__(self) -> None:
        self.alloc: list[MSpan] = [EMPTY_SPAN] * NUM_SIZE_CLASSES  # span per size class

    def refill(self, sizeclass: int) -> MSpan:
        """Swap the exhausted span of sizeclass for one with a free slot."""
        if finq:
            runfinq()  # dropped Buffers first: their slots may be this class's
        old = self.alloc[sizeclass]
        if old is not EMPTY_SPAN:
            central[sizeclass].uncache_span(old)
        span = central[sizeclass].cache_span(self)
        self.alloc[sizeclass] = span
        return span

    def release_all(self) -> None:
        """Give every cached span back to its mcentral (mcache.releaseAll)."""
        for sc, span in enumerate(self.alloc):
            if span is not EMPTY_SPAN:
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
