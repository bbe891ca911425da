"""The scavenger: free pages go back to the OS (Go's mgcscavenge.go).

Go's background scavenger keeps the memory the heap retains (heap_sys -
heap_released) near a goal, 10% over what the heap needs
(``retainExtraPercent``), and paces itself to about 1% of one CPU
(``scavengePercent``): after each unit of work it sleeps long enough that
work / (work + sleep) is 1%. gort's goal is 10% over the recent peak of
heap_inuse (the peak over the last two windows of ``PEAK_WINDOW`` seconds),
since there is no GC cycle to measure the heap by.

sysmon drives it: each sysmon round calls ``Scavenger.tick`` (sysmon has no
P, like Go's scavenger goroutine it runs beside the program). A tick that
finds retained memory over the goal sweeps the mcentrals and gives the
kept large spans back (at most once a window), then releases one chunk of at most
``CHUNK_PAGES`` (64 KiB, Go's chunk) from the largest free run with
``madvise(MADV_DONTNEED)``, and schedules the next tick 99 times the work's
duration later. ``tick`` returns when it next wants to run, so that sysmon,
when the program is idle, sleeps until then instead of for ever.

Only free runs are released: the heap hands a run to the scavenger under
its lock and takes it back, filed as released, after the madvise, so no
allocation can meanwhile be given those pages, and no page of a span in use
is ever touched.
"""

from __future__ import annotations

from time import monotonic, perf_counter

from .mcache import central
from .mfinal import finq, runfinq
from .mheap import MHeap, mheap_

RETAIN_EXTRA_PERCENT = 10
SCAVENGE_PERCENT = 1  # of one CPU
CHUNK_PAGES = 8  # 64 KiB
PEAK_WINDOW = 1.0  # seconds


class Scavenger:
    def __init__(self, heap: MHeap) -> None:
        self.heap = heap
        self.next = 0.0  # monotonic time of the next unit of work
        self.window_start = 0.0
        self.prev_peak = 0  # peak heap_inuse pages of the previous window
        self.released_pages = 0  # by this scavenger (for tests and schedtrace)
        self.swept_at = 0.0

    def goal_pages(self, now: float) -> int:
        """Retained pages allowed: 10% over the recent peak in use."""
        heap = self.heap
        if now - self.window_start >= PEAK_WINDOW:
            self.prev_peak = heap.peak_inuse
            heap.peak_inuse = heap.pages_inuse
            self.window_start = now
        peak = max(self.prev_peak, heap.peak_inuse)
        return peak + peak * RETAIN_EXTRA_PERCENT // 100

    def tick(self, now: float) -> float:
        """sysmon's call: maybe release one chunk; when to call again."""
        if finq:
            runfinq()  # sysmon holds no allocator lock
        if now < self.next:
            return self.next
        heap = self.heap
        retained = heap.retained_pages()
        if retained <= self.goal_pages(now):
            if retained <= heap.pages_inuse * (100 + RETAIN_EXTRA_PERCENT) // 100:
                return float("inf")  # within the goal even once the peak is forgotten
            return self.window_start + PEAK_WINDOW  # the goal falls when the window turns
        t0 = perf_counter()
        if now - self.swept_at >= PEAK_WINDOW:
            sweep()  # at most once a window: 67 locks
            self.swept_at = now
        n = self.release(CHUNK_PAGES)
        work = perf_counter() - t0
        if n == 0:
            return float("inf")  # nothing free to release
        # Sleep so that work is SCAVENGE_PERCENT of the time (Go's pacing).
        self.next = monotonic() + work * (100 - SCAVENGE_PERCENT) / SCAVENGE_PERCENT
        return self.next

    def release(self, limit: int) -> int:
        """Release up to limit free pages; how many were released."""
        got = self.heap.take_unscavenged(limit)
        if got is None:
            return 0
        start, n = got
        self.heap.release(start, n)
        self.released_pages += n
        return n


def sweep() -> None:
    """Empty spans back to the heap: the mcentrals' and the large cache's."""
    for c in central[1:]:
        c.sweep()
    mheap_.drain_large_cache()


def scavenge_all() -> int:
    """Release every free page now (debug.FreeOSMemory); pages released."""
    sweep()
    total = 0
    while True:
        n = scavenger.release(1 << 30)
        if n == 0:
            return total
        total += n


scavenger = Scavenger(mheap_)
