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

from . import malloc
from .mcache import central, total_nmalloc
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


def _live_per_class() -> tuple[list[int], int, int, int, int]:
    """Live objects per size class; live large objects, their bytes, and the
    allocations and bytes of large objects ever made."""
    live = [0] * len(class_to_size)
    large = large_bytes = 0
    kept = {id(s) for ss in mheap_.large_cache for s in list(ss)}
    with mheap_.lock:
        spans = list(mheap_.spans.values())
        large_mallocs = mheap_.retired_large_mallocs
        large_total = mheap_.retired_large_bytes
    for span in spans:
        if span.sizeclass:
            live[span.sizeclass] += span.nelems - len(span.freelist)
            continue
        large_mallocs += span.nmalloc
        large_total += span.nmalloc * span.npages * PAGE_SIZE
        if id(span) not in kept:
            large += 1
            large_bytes += span.npages * PAGE_SIZE
    return live, large, large_bytes, large_mallocs, large_total


def read_mem_stats() -> MemStats:
    """A snapshot of the allocator's figures (gort.mem_stats)."""
    for c in central[1:]:
        c.sweep()  # file spans that racing frees left misfiled, as Go's sweep would
    nmalloc = total_nmalloc()
    live, nlarge, large_live_bytes, large_mallocs, large_bytes = _live_per_class()
    with mheap_.lock:
        pages_sys = mheap_.pages_sys
        pages_inuse = mheap_.pages_inuse
        pages_released = mheap_.scav.npages
    by_size = [
        BySize(class_to_size[sc], nmalloc[sc], nmalloc[sc] - live[sc])
        for sc in range(1, len(class_to_size))
    ]
    mallocs = sum(nmalloc) + large_mallocs
    objects = sum(live) + nlarge
    heap_alloc = sum(n * size for n, size in zip(live, class_to_size, strict=True))
    heap_alloc += large_live_bytes
    total = sum(n * size for n, size in zip(nmalloc, class_to_size, strict=True)) + large_bytes
    heap_sys = pages_sys * PAGE_SIZE
    return MemStats(
        alloc=heap_alloc,
        total_alloc=total,
        sys=heap_sys,
        mallocs=mallocs,
        frees=mallocs - objects,
        heap_alloc=heap_alloc,
        heap_sys=heap_sys,
        heap_idle=heap_sys - pages_inuse * PAGE_SIZE,
        heap_inuse=pages_inuse * PAGE_SIZE,
        heap_released=pages_released * PAGE_SIZE,
        heap_objects=objects,
        num_gc=sum(s["collections"] for s in gc.get_stats()),
        finalizer_frees=malloc.finalizer_frees,
        by_size=by_size,
    )
