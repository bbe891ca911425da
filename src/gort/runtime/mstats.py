"""gort.mem_stats(): the allocator's statistics (Go's mstats.go, MemStats).

The fields keep Go's names, in snake_case, and Go's meanings, for the
memory gort.alloc manages (not the Python objects, which are CPython's):

* ``heap_sys``: bytes of heap the arenas have grown into (address space
  obtained from the OS; pages released to it are still counted).
* ``heap_inuse``: bytes in spans in use: small-object spans, whether an
  mcache holds them or not, and large objects.
* ``heap_idle`` = heap_sys - heap_inuse; ``heap_released``: the idle bytes
  returned to the OS (scavenged, or grown but never touched).
* ``heap_alloc``/``alloc``: bytes of live buffers, each rounded up to its
  size class (a large one to whole pages); ``heap_objects``: live buffers.
* ``mallocs``/``frees``: buffers allocated and freed since the process
  started; ``total_alloc`` the bytes allocated. ``by_size``: per size
  class, Go's ``BySize`` (size, mallocs, frees).
* ``num_gc``: collections Python's cyclic GC has completed, its nearest
  counterpart to Go's; ``finalizer_frees``: buffers that were dropped
  without free() and returned by their finalizer (gort's own field).

As Go's ReadMemStats, it is a consistent picture only when nothing
allocates meanwhile; gort does not stop the world to take it, so a reading
taken while other Ms allocate can be off by the buffers in flight.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field

from . import mfinal
from .mcache import central
from .mheap import mheap_
from .sizeclasses import PAGE_SIZE, class_to_size


@dataclass(frozen=True)
class BySize:
    size: int
    mallocs: int
    frees: int


@dataclass(frozen=True)
class MemStats:
    alloc: int = 0
    total_alloc: int = 0
    sys: int = 0
    mallocs: int = 0
    frees: int = 0
    heap_alloc: int = 0
    heap_sys: int = 0
    heap_idle: int = 0
    heap_inuse: int = 0
    heap_released: int = 0
    heap_objects: int = 0
    num_gc: int = 0
    finalizer_frees: int = 0
    by_size: list[BySize] = field(default_factory=list, repr=False)


@dataclass
class _Counts:
    live: list[int]  # live objects per size class (0: large)
    frees: list[int]  # frees per size class (0: large)
    large_live_bytes: int
    large_total_bytes: int  # every large object ever made


def _count() -> _Counts:
    """Objects live and freed, from the spans.

    Nothing counts allocations on the hot path. A span counts its frees
    (``nfree``; spans given back to the heap leave theirs in
    ``retired_frees``); live objects are the slots handed out and not
    queued as free (a kept large span has its Buffer queued: not live); and
    mallocs = frees + live.
    """
    c = _Counts([0] * len(class_to_size), [], 0, 0)
    with mheap_.lock:
        spans = list(mheap_.spans.values())
        c.frees = list(mheap_.retired_frees)
        c.large_total_bytes = mheap_.retired_large_bytes
    for span in spans:
        frees = span.nfree
        live = span.freeindex - len(span.free)
        sc = span.sizeclass
        c.frees[sc] += frees
        c.live[sc] += live
        if not sc:
            c.large_live_bytes += live * span.elemsize
            c.large_total_bytes += (frees + live) * span.elemsize
    return c


def read_mem_stats() -> MemStats:
    """A snapshot of the allocator's figures (gort.mem_stats)."""
    mfinal.runfinq()  # Buffers dropped unfreed are counted as freed
    for central_ in central[1:]:
        central_.sweep()  # file spans that racing frees left misfiled, as Go's sweep would
    c = _count()
    with mheap_.lock:
        pages_sys = mheap_.pages_sys
        pages_inuse = mheap_.pages_inuse
        pages_released = mheap_.scav.npages
    mallocs = [f + n for f, n in zip(c.frees, c.live, strict=True)]
    by_size = [
        BySize(class_to_size[sc], mallocs[sc], c.frees[sc]) for sc in range(1, len(class_to_size))
    ]
    small = range(1, len(class_to_size))
    heap_alloc = sum(c.live[sc] * class_to_size[sc] for sc in small) + c.large_live_bytes
    total = sum(mallocs[sc] * class_to_size[sc] for sc in small) + c.large_total_bytes
    heap_sys = pages_sys * PAGE_SIZE
    return MemStats(
        alloc=heap_alloc,
        total_alloc=total,
        sys=heap_sys,
        mallocs=sum(mallocs),
        frees=sum(c.frees),
        heap_alloc=heap_alloc,
        heap_sys=heap_sys,
        heap_idle=heap_sys - pages_inuse * PAGE_SIZE,
        heap_inuse=pages_inuse * PAGE_SIZE,
        heap_released=pages_released * PAGE_SIZE,
        heap_objects=sum(c.live),
        num_gc=sum(s["collections"] for s in gc.get_stats()),
        finalizer_frees=mfinal.finalizer_frees,
        by_size=by_size,
    )
