"""Central free lists, one per size class (Go's mcentral.go).

An mcentral owns the spans of its class that no mcache holds: ``partial``
(some slot free) and ``full`` (none free), both under ``lock``. An mcache
takes a whole span at a time (``cache_span``), which amortises the lock
over every object in it, and gives it back when it wants another one
(``uncache_span``).

Frees reach an mcentral only for spans that no mcache holds (a span that an
mcache holds takes its frees lock-free, see malloc.py). A span whose last
object is freed goes back to the heap at once, as Go's sweeper frees empty
spans. A free that raced with an mcache giving its span back can leave a
span in the wrong set (a free slot in ``full``, or nothing in use at all);
``sweep`` files those again, and the scavenger calls it before it measures
what to return to the OS.
"""

from __future__ import annotations

import threading
from typing import Any

from .mheap import MHeap, MSpan


class MCentral:
    __slots__ = ("full", "heap", "lock", "partial", "sizeclass")

    def __init__(self, sizeclass: int, heap: MHeap) -> None:
        self.sizeclass = sizeclass
        self.heap = heap
        self.lock = threading.Lock()
        # Insertion-ordered sets (dicts): lock held.
        self.partial: dict[MSpan, None] = {}
        self.full: dict[MSpan, None] = {}

    def cache_span(self, mc: Any) -> MSpan:
        """A span with a free slot, now held by mc (mcentral.cacheSpan)."""
        with self.lock:
            while self.partial:
                span, _ = self.partial.popitem()  # the most recent: warm pages
                if span.nfree_slots():
                    span.mcache = mc
                    return span
                self.full[span] = None  # filed before a racing change; refile
            span = self.heap.alloc_span(self.sizeclass, self)
            span.mcache = mc
            return span

    def uncache_span(self, span: MSpan) -> None:
        """mc gives span back (mcentral.uncacheSpan)."""
        with self.lock:
            span.mcache = None
            self._file(span)

    def free_uncached(self, span: MSpan, b: Any) -> None:
        """Free a slot (its Buffer b) of a span that no mcache holds."""
        with self.lock:
            span.free.append(b)
            if span.mcache is None:
                self.full.pop(span, None)
                self.partial.pop(span, None)
                self._file(span)

    def _file(self, span: MSpan) -> None:
        """Put an uncached span where it belongs. Lock held."""
        n = span.nfree_slots()
        if n == span.nelems:
            self.heap.free_span(span)
        elif n:
            self.partial[span] = None
        else:
            self.full[span] = None

    def sweep(self) -> None:
        """Refile spans left in the wrong set by frees that raced an uncache."""
        with self.lock:
            for span in list(self.full):
                if span.nfree_slots():
                    del self.full[span]
                    self._file(span)
            for span in list(self.partial):
                if span.nfree_slots() == span.nelems:
                    del self.partial[span]
                    self.heap.free_span(span)
