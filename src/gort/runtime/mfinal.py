"""Finalizers of Buffers dropped without free() (Go's mfinal.go).

A Buffer's ``__del__`` runs wherever CPython drops the last reference or
collects a cycle: in any thread, and possibly in the middle of the
allocator itself (a collection triggered while an mcentral's or the heap's
lock is held). Freeing there could deadlock on those locks, so, as Go
queues finalizers for their own goroutine, ``__del__`` only queues the
slot (``finq``: ``list.append`` is atomic) and ``runfinq`` frees the queued
slots at points where the caller holds no allocator lock: an mcache refill,
the scavenger's tick on sysmon, ``mem_stats`` and the end of a run.

The dropped Buffer object itself is gone (CPython runs a finalizer once per
object, so it could not be recycled safely): the slot gets a new Buffer
object, as on its first allocation.
"""

from __future__ import annotations

import threading
from typing import Any

finq: list[tuple[Any, int, memoryview]] = []  # (span, slot, slot's view) of dropped live Buffers
_lock = threading.Lock()
finalizer_frees = 0  # _lock


def runfinq() -> None:
    """Free every queued slot and count it. No allocator lock may be held."""
    global finalizer_frees
    from .malloc import newbuffer  # malloc imports this module

    n = 0
    while finq:
        try:
            span, slot, full = finq.pop()
        except IndexError:  # another thread emptied it meanwhile
            break
        b = newbuffer(span, slot, full)
        span.nfree += 1
        if span.mcache is not None:
            span.free.append(b)
        else:
            span.central.free_uncached(span, b)
        n += 1
    if n:
        with _lock:
            finalizer_frees += n
