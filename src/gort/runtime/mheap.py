"""The page heap (Go's mheap.go, mpagealloc.go): arenas, page runs, spans.

Memory comes from the OS in arenas: anonymous private mmaps of 64 MiB
(``ARENA_BYTES``) that reserve address space only; the kernel commits a page
when it is first touched. The heap grows into the current arena by at least
1 MiB at a time, as Go's ``mheap.grow`` does, and counts what it has grown as
``heap_sys``. Freshly grown pages have never been touched, so, like Go, the
heap counts them as released (scavenged) until they are first allocated.

Pages are numbered globally: arena k owns pages ``[base, base + npages)``
and a one-page gap separates arenas, so two free runs never coalesce across
an arena boundary. Free runs live in one of two ``RunSet``s: ``free`` (pages
that may be resident) and ``scav`` (pages returned to the OS with
``MADV_DONTNEED``, which read back as zeros). Allocation takes from ``free``
first (warm pages), then ``scav``, then grows the heap.

An ``MSpan`` is a run of pages in use: either cut into objects of one size
class (a small span, owned by an mcentral or cached by one mcache) or one
large object (more than 32 KiB, straight from the heap as in Go).

Locking: ``MHeap.lock`` guards the run sets, the span table and the page
counters. An mcentral may call into the heap with its own lock held
(mcentral, then heap); the heap never calls an mcentral.
"""

from __future__ import annotations

import mmap
import threading
from collections import deque
from typing import Any

from .sizeclasses import PAGE_SIZE, class_to_allocnpages, class_to_size

ARENA_BYTES = 64 << 20
ARENA_PAGES = ARENA_BYTES // PAGE_SIZE
HEAP_GROW_PAGES = (1 << 20) // PAGE_SIZE  # grow by at least 1 MiB (Go's mheap.grow)
# Freed large spans of up to 16 pages are kept whole, two per size (at most
# 272 pages, 2.1 MiB), for the next large allocation of the same size: Go
# keeps a per-P page cache for allocations under 16 pages for the same
# reason (no page search, no heap lock).
LARGE_CACHE_MAX_NPAGES = 16
LARGE_CACHE_SPANS = 2


class Arena:
    """One mmap reservation (Go's heapArena)."""

    __slots__ = ("base", "mem", "npages", "used", "view")

    def __init__(self, base: int, npages: int) -> None:
        flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_NORESERVE", 0x4000)
        self.mem = mmap.mmap(-1, npages * PAGE_SIZE, flags=flags)
        self.view = memoryview(self.mem)
        self.base = base  # the global number of the first page
        self.npages = npages
        self.used = 0  # pages the heap has grown into (counted in heap_sys)


class MSpan:
    """A run of pages in use (Go's mspan).

    Go keeps an allocation bitmap, a ``freeindex`` below which it scans the
    bitmap for free slots, and an allocation count. gort keeps ``freeindex``
    (slots at and above it have never been handed out) and, instead of the
    bitmap, ``free``: a FIFO of the Buffer objects of the slots below it
    that are free. A slot's Buffer object is made on its first allocation
    and handed out again by every later one (malloc.py), so a free slot is
    "its Buffer is in ``free``"; allocation is one ``popleft``, a free one
    ``append``, both atomic. FIFO rather than LIFO: the Buffer freed last is
    the one most likely still referenced by the variable that held it, and
    such a Buffer cannot be handed out again (see malloc.py).

    Allocated objects: ``freeindex - len(free)``. ``nfree`` counts the frees
    from this span (frees and mallocs in mem_stats come from it). ``free``
    and ``nfree`` are written by whichever thread frees, without a lock
    (``deque.append`` is atomic; ``nfree += 1`` is not, see malloc.py).

    ``mcache`` is the mcache that caches this span, or None when it sits in
    its mcentral (or is large). It is written under the mcentral's lock.
    """

    __slots__ = (
        "arena",
        "central",
        "elemsize",
        "free",
        "freeindex",
        "mcache",
        "nelems",
        "nfree",
        "npages",
        "offset",
        "sizeclass",
        "startpage",
    )

    def __init__(self, arena: Arena, startpage: int, npages: int, sizeclass: int) -> None:
        self.arena = arena
        self.startpage = startpage
        self.npages = npages
        self.offset = (startpage - arena.base) * PAGE_SIZE  # byte offset in the arena
        self.sizeclass = sizeclass
        self.mcache: Any = None
        self.central: Any = None  # what free() returns an uncached slot to
        if sizeclass:
            self.elemsize = class_to_size[sizeclass]
            self.nelems = npages * PAGE_SIZE // self.elemsize
        else:
            self.elemsize = npages * PAGE_SIZE
            self.nelems = 1
        self.free: deque[Any] = deque()
        self.freeindex = 0
        self.nfree = 0

    @property
    def alloc_count(self) -> int:
        """Objects allocated from this span (Go's allocCount)."""
        return self.freeindex - len(self.free)

    def nfree_slots(self) -> int:
        return self.nelems - self.freeindex + len(self.free)

    def slotview(self, slot: int) -> memoryview:
        """The memory of a slot: elemsize bytes of the arena."""
        start = self.offset + slot * self.elemsize
        return self.arena.view[start : start + self.elemsize]

    def __repr__(self) -> str:
        return (
            f"<mspan pages {self.startpage}+{self.npages} class {self.sizeclass} "
            f"{self.alloc_count}/{self.nelems}>"
        )


class RunSet:
    """Free page runs that coalesce with their neighbours.

    ``starts`` maps a run's first page to its length, ``ends`` its end (one
    past the last page) to its first page, and ``bins`` groups the starts
    by length so that a fit is found by size. All under MHeap.lock.
    """

    __slots__ = ("bins", "ends", "npages", "starts")

    def __init__(self) -> None:
        self.starts: dict[int, int] = {}
        self.ends: dict[int, int] = {}
        self.bins: dict[int, dict[int, None]] = {}
        self.npages = 0

    def _insert(self, start: int, n: int) -> None:
        self.starts[start] = n
        self.ends[start + n] = start
        self.bins.setdefault(n, {})[start] = None
        self.npages += n

    def _remove(self, start: int) -> int:
        n = self.starts.pop(start)
        del self.ends[start + n]
        b = self.bins[n]
        del b[start]
        if not b:
            del self.bins[n]
        self.npages -= n
        return n

    def add(self, start: int, n: int) -> None:
        """Add a free run, merged with the runs that touch it."""
        before = self.ends.get(start)
        if before is not None:
            n += self._remove(before)
            start = before
        if start + n in self.starts:
            n += self._remove(start + n)
        self._insert(start, n)

    def take(self, n: int) -> int | None:
        """First page of n pages cut from the best-fitting run, or None."""
        b = self.bins.get(n)
        if b:
            start = next(iter(b))
            self._remove(start)
            return start
        fits = [k for k in self.bins if k > n]
        if not fits:
            return None
        k = min(fits)
        start = next(iter(self.bins[k]))
        self._remove(start)
        self._insert(start + n, k - n)
        return start

    def take_largest(self, limit: int) -> tuple[int, int] | None:
        """Up to limit pages from the end of the largest run (for the scavenger)."""
        if not self.bins:
            return None
        k = max(self.bins)
        start = next(iter(self.bins[k]))
        self._remove(start)
        if k > limit:
            self._insert(start, k - limit)
            return start + k - limit, limit
        return start, k


class MHeap:
    """The page heap: arenas, free runs, spans in use, page counters."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.arenas: list[Arena] = []
        self.free = RunSet()  # free pages that may be resident
        self.scav = RunSet()  # free pages returned to the OS
        self.spans: dict[int, MSpan] = {}  # start page -> span in use
        self.pages_sys = 0  # grown into: heap_sys
        self.pages_inuse = 0  # in spans: heap_inuse
        self.peak_inuse = 0  # the scavenger's "recent peak" (it resets it)
        # Frees per size class (0: large) of the spans given back to the
        # pages: their nfree counts (lock). See mstats.py.
        self.retired_frees = [0] * len(class_to_size)
        self.retired_large_bytes = 0  # and the bytes of those large objects
        # npages -> free large spans kept whole. Lock-free: list.pop and
        # list.append are atomic, and a span is in at most one list.
        self.large_cache: list[list[MSpan]] = [[] for _ in range(LARGE_CACHE_MAX_NPAGES + 1)]

    # -- arenas and growth ---------------------------------------------

    def _arena_of(self, page: int) -> Arena:
        for arena in reversed(self.arenas):
            if arena.base <= page:
                return arena
        raise AssertionError(f"page {page} outside every arena")

    def grow(self, n: int) -> None:
        """Grow into the current arena (a new one if it lacks n pages). Lock held."""
        arena = self.arenas[-1] if self.arenas else None
        if arena is None or arena.npages - arena.used < n:
            base = arena.base + arena.npages + 1 if arena is not None else 0
            arena = Arena(base, max(ARENA_PAGES, n))
            self.arenas.append(arena)
        g = min(max(n, HEAP_GROW_PAGES), arena.npages - arena.used)
        self.scav.add(arena.base + arena.used, g)  # never touched: not resident
        arena.used += g
        self.pages_sys += g

    # -- pages -----------------------------------------------------------

    def _alloc_pages(self, n: int) -> int:
        """First page of n free pages. Lock held."""
        start = self.free.take(n)
        if start is None:
            start = self.scav.take(n)
            if start is None:
                self.grow(n)
                start = self.scav.take(n)
                assert start is not None
        self.pages_inuse += n
        if self.pages_inuse > self.peak_inuse:
            self.peak_inuse = self.pages_inuse
        return start

    def alloc_span(self, sizeclass: int, central: Any) -> MSpan:
        """A fresh span for a size class (mheap.alloc for mcentral.grow)."""
        n = class_to_allocnpages[sizeclass]
        with self.lock:
            start = self._alloc_pages(n)
            span = MSpan(self._arena_of(start), start, n, sizeclass)
            span.central = central
            self.spans[start] = span
        return span

    def free_span(self, span: MSpan) -> None:
        """Return the pages of a span whose objects are all free."""
        with self.lock:
            self._free_span_locked(span)

    def _free_span_locked(self, span: MSpan) -> None:
        del self.spans[span.startpage]
        # Its Buffers (and their views) go now, not when the cyclic GC finds
        # the span -> queue -> Buffer -> span cycle; a stale one kept by the
        # program stays freed.
        span.free.clear()
        frees = span.nfree
        self.retired_frees[span.sizeclass] += frees
        if not span.sizeclass:
            self.retired_large_bytes += frees * span.elemsize
        self.free.add(span.startpage, span.npages)
        self.pages_inuse -= span.npages

    # -- large objects -----------------------------------------------------

    def alloc_large(self, npages: int) -> MSpan:
        """A new span for one large object (the large cache had none)."""
        with self.lock:
            start = self._alloc_pages(npages)
            span = MSpan(self._arena_of(start), start, npages, 0)
            span.central = self
            self.spans[start] = span
        return span

    def free_uncached(self, span: MSpan, b: Any) -> None:
        """Free a large object (its Buffer b): keep its span whole, or give its pages back."""
        span.free.append(b)
        n = span.npages
        if n <= LARGE_CACHE_MAX_NPAGES:
            kept = self.large_cache[n]
            if len(kept) < LARGE_CACHE_SPANS:  # racy by one at worst: a bound, not a count
                kept.append(span)
                return
        with self.lock:
            self._free_span_locked(span)

    def drain_large_cache(self) -> None:
        """Give the kept large spans' pages back (scavenger, end of run)."""
        for kept in self.large_cache:
            while kept:
                try:
                    span = kept.pop()
                except IndexError:  # an allocation took it meanwhile
                    break
                with self.lock:
                    self._free_span_locked(span)

    # -- the scavenger's primitives (mgcscavenge.go) ---------------------

    def retained_pages(self) -> int:
        """Pages that may be resident: heap_sys - heap_released."""
        return self.pages_sys - self.scav.npages

    def take_unscavenged(self, limit: int) -> tuple[int, int] | None:
        """Claim up to limit free resident pages for release (under the lock).

        While they are released (outside the lock) they belong to neither
        run set, so no allocation can hand them out meanwhile.
        """
        with self.lock:
            return self.free.take_largest(limit)

    def release(self, start: int, n: int) -> None:
        """madvise(DONTNEED) a claimed run, then file it as scavenged."""
        arena = self._arena_of(start)
        arena.mem.madvise(mmap.MADV_DONTNEED, (start - arena.base) * PAGE_SIZE, n * PAGE_SIZE)
        with self.lock:
            self.scav.add(start, n)


mheap_ = MHeap()
"""The process's heap. It outlives gort.run, as Go's heap lives as long as the process."""
