"""gort.alloc, Buffer and mem_stats: Go's allocator for I/O buffers.

What a user relies on: a Buffer has the bytes asked for, no two live buffers
share a byte, what is freed is counted and reused, a second free or a use
after free is a fatal error even once the slot has been handed out again, a
dropped Buffer comes back through its finalizer, every P allocates from its
own mcache, and a P that gomaxprocs removes gives its spans back.
"""

from __future__ import annotations

import gc
import itertools
import threading
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
    run_state_machine_as_test,
)

import gort
from gort.runtime import mksizeclasses
from gort.runtime.malloc import Buffer
from gort.runtime.mcache import central, freemcache
from gort.runtime.mheap import mheap_
from gort.runtime.proc import getg
from gort.runtime.runtime2 import sched
from gort.runtime.sizeclasses import PAGE_SIZE, class_to_allocnpages, class_to_size

KiB = 1024


def _rounded(n: int) -> int:
    """What n bytes occupy: their size class, or whole pages when large."""
    if n > 32 * KiB:
        return -(-n // PAGE_SIZE) * PAGE_SIZE
    return min(size for size in class_to_size[1:] if size >= max(n, 1))


def _extent(b: Buffer) -> tuple[int, int]:
    """[start, end) of b's bytes in the heap's global address space."""
    span = b._span
    start = span.startpage * PAGE_SIZE + b._slot * span.elemsize
    return start, start + len(b)


# -- the size class table ---------------------------------------------------


def test_sizeclasses_is_what_the_generator_makes() -> None:
    # Regenerate with: python -m gort.runtime.mksizeclasses
    with open(mksizeclasses.OUTPUT) as f:
        assert f.read() == mksizeclasses.generate()


def test_size_classes_keep_gos_waste_bounds() -> None:
    sizes = class_to_size[1:]
    assert len(class_to_size) == 68 and sizes[:4] == (8, 16, 24, 32) and sizes[-1] == 32 * KiB
    assert list(sizes) == sorted(set(sizes))
    for size, npages in zip(sizes, class_to_allocnpages[1:], strict=True):
        span = npages * PAGE_SIZE
        assert span % size <= span // 8  # tail waste at most 12.5%
        assert size >= 128 or size % 8 == 0
    prev = 0
    for size, npages in zip(sizes, class_to_allocnpages[1:], strict=True):
        # Go's "max waste": rounding up and chopping multiply, at worst 1.125 x 1.125
        # (alignment makes the classes under 128 bytes worse, as in Go).
        span = npages * PAGE_SIZE
        objects = span // size
        worst = ((size - prev - 1) * objects + span % size) / span
        assert size < 128 or worst <= 1 - 1 / (1.125 * 1.125)
        prev = size


# -- Buffer basics -------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 8, 100, 4 * KiB, 32 * KiB, 32 * KiB + 1, 1 << 20])
def test_alloc_gives_n_writable_bytes(procs: int, n: int) -> None:
    def main() -> tuple[int, bytes]:
        with gort.alloc(n) as b:
            b.view[:] = bytes([7]) * n
            return len(b), bytes(b.view[:3])

    assert gort.run(main, procs=procs) == (n, bytes([7]) * min(n, 3))


def test_zero_fills_only_when_asked() -> None:
    b = gort.alloc(4 * KiB)
    b.view[:] = b"\xff" * len(b)
    b.free()
    c = gort.alloc(4 * KiB, zero=True)  # the same slot: LIFO reuse
    assert bytes(c.view) == bytes(4 * KiB)
    c.free()


def test_a_freed_slot_is_reused_first() -> None:
    def main() -> bool:
        b = gort.alloc(100)
        where = _extent(b)
        b.free()
        c = gort.alloc(100)
        same = _extent(c) == where
        c.free()
        return same

    assert gort.run(main)


@pytest.mark.parametrize("n", [64, 64 * KiB])
def test_double_free_is_fatal(n: int) -> None:
    b = gort.alloc(n)
    b.free()
    with pytest.raises(gort.Fatal, match=r"^runtime: double free$"):
        b.free()


def test_use_after_free_is_fatal() -> None:
    b = gort.alloc(64)
    b.free()
    with pytest.raises(gort.Fatal, match="freed buffer"):
        b.view  # noqa: B018
    with pytest.raises(gort.Fatal, match="freed buffer"):
        len(b)
    with pytest.raises(gort.Fatal, match="freed buffer"), b:
        pass


def test_a_stale_reference_stays_freed_when_its_slot_is_reused() -> None:
    # The slot is handed out again, but not the object that the old owner still holds.
    b = gort.alloc(64)
    span, slot = b._span, b._slot
    b.free()
    c = gort.alloc(64)
    assert (c._span, c._slot) == (span, slot) and c is not b
    c.view[:] = b"c" * 64
    with pytest.raises(gort.Fatal, match=r"^runtime: double free$"):
        b.free()
    with pytest.raises(gort.Fatal, match="freed buffer"):
        b.view  # noqa: B018
    assert bytes(c.view) == b"c" * 64  # c is untouched and still usable
    c.free()


def test_a_buffer_nobody_holds_is_handed_out_again() -> None:
    # A slot's Buffer object is reused once nothing but the allocator references it.
    def main() -> int:
        ids = set()
        for _ in range(100):
            b = gort.alloc(4 * KiB)
            ids.add(id(b))
            b.free()
            del b
        return len(ids)

    assert gort.run(main) <= 4  # the slots of one span at most, not one object per call


def test_a_slot_kept_by_a_variable_takes_turns_between_two_objects() -> None:
    # The other slot of the 4 KiB span is held, so every allocation is of the same slot,
    # whose last Buffer the loop variable still references: the slot's two objects take
    # turns (no object made per call), the variable's one is never the one handed out,
    # and a reference kept on purpose stays freed.
    def main() -> tuple[int, bool]:
        keep = gort.alloc(4 * KiB)
        first = gort.alloc(4 * KiB)
        first.free()
        ids = set()
        stale_caught = True
        b = gort.alloc(4 * KiB)
        for i in range(50):
            assert b is not first
            b.view[:1] = bytes([i])
            ids.add(id(b))
            b.free()
            b = gort.alloc(4 * KiB)  # allocated while the variable still holds the freed one
            try:
                first.free()
                stale_caught = False
            except gort.Fatal:
                pass
        b.free()
        keep.free()
        return len(ids), stale_caught

    n, stale_caught = gort.run(main, procs=1)
    assert n <= 3 and stale_caught


def test_growing_gomaxprocs_gives_the_new_p_its_own_mcache() -> None:
    # With one P the fast path goes straight to P0's mcache; once there are two, a
    # goroutine on P1 must allocate from P1's.
    def main() -> bool:
        gort.alloc(256).free()  # P0's mcache, through the one-P shortcut
        gort.gomaxprocs(2)
        out = gort.chan()

        def worker() -> None:
            end = time.monotonic() + 0.01
            while time.monotonic() < end:
                pass  # no yield: the idle P has to take the other goroutines
            pp = getg("test").p
            b = gort.alloc(256)
            out.send((pp.id, b._span.mcache is pp.mcache))
            b.free()

        seen: dict[int, bool] = {}
        for _ in range(20):
            for _ in range(4):
                gort.go(worker)
            for _ in range(4):
                pid, mine = out.recv()
                seen[pid] = seen.get(pid, True) and mine
            if 1 in seen:
                break
        return seen.get(1, False) and seen.get(0, True)

    assert gort.run(main, procs=1)


@pytest.mark.parametrize(
    ("bad", "err"), [(-1, ValueError), (-100, ValueError), (1.5, TypeError), ("8", TypeError)]
)
def test_bad_sizes_are_rejected_without_leaking(bad: Any, err: type[Exception]) -> None:
    def main() -> int:
        before = gort.mem_stats().heap_objects
        with pytest.raises(err):
            gort.alloc(bad)
        return gort.mem_stats().heap_objects - before

    assert gort.run(main) == 0


def test_dropped_buffers_are_freed_by_their_finalizer(procs: int) -> None:
    def main() -> tuple[int, int]:
        before = gort.mem_stats()
        for n in (64, 4 * KiB, 64 * KiB, 1 << 20):
            gort.alloc(n)  # dropped at once
        gc.collect()
        after = gort.mem_stats()
        return (
            after.finalizer_frees - before.finalizer_frees,
            after.heap_objects - before.heap_objects,
        )

    assert gort.run(main, procs=procs) == (4, 0)


# -- statistics ------------------------------------------------------------------


def test_mem_stats_count_by_size_class() -> None:
    def main() -> list[int]:
        s0 = gort.mem_stats()
        bufs = [gort.alloc(n) for n in (1, 8, 9, 4 * KiB, 40 * KiB)]
        s1 = gort.mem_stats()
        bufs[0].free()
        bufs[2].free()
        s2 = gort.mem_stats()
        for b in bufs[1::2]:
            b.free()
        bufs[4].free()
        s3 = gort.mem_stats()
        by8 = next(i for i, c in enumerate(s3.by_size) if c.size == 8)
        return [
            s1.mallocs - s0.mallocs,
            s1.heap_alloc - s0.heap_alloc,
            s2.frees - s0.frees,
            s2.heap_alloc - s0.heap_alloc,
            s3.heap_alloc - s0.heap_alloc,
            s3.frees - s0.frees,
            s3.by_size[by8].mallocs - s0.by_size[by8].mallocs,
            s3.total_alloc - s0.total_alloc,
        ]

    rounded = 8 + 8 + 16 + 4 * KiB + 40 * KiB
    assert gort.run(main) == [5, rounded, 2, rounded - 8 - 16, 0, 5, 2, rounded]


def test_mem_stats_fields_are_consistent() -> None:
    s = gort.mem_stats()
    assert s.heap_idle == s.heap_sys - s.heap_inuse
    assert 0 <= s.heap_released <= s.heap_idle
    assert s.heap_alloc <= s.heap_inuse
    assert s.mallocs - s.frees == s.heap_objects
    assert s.num_gc >= 0 and isinstance(s, gort.MemStats)


# -- several Ps, procresize, runs --------------------------------------------------


def test_every_p_allocates_from_its_own_mcache() -> None:
    def main() -> int:
        out = gort.chan()

        def worker() -> None:
            end = time.monotonic() + 0.01
            while time.monotonic() < end:
                pass  # no yield: the idle P has to take the other goroutines
            pp = getg("test").p
            bufs = [gort.alloc(256) for _ in range(20)]  # fewer than a span holds (32)
            mc = pp.mcache  # made by this P's first allocation
            mine = mc is not None and all(b._span.mcache is mc for b in bufs)
            for b in bufs:
                b.free()
            out.send((pp.id, mine))

        for _ in range(8):
            gort.go(worker)
        seen = [out.recv() for _ in range(8)]
        assert all(mine for _, mine in seen)
        return len({pid for pid, _ in seen})

    assert gort.run(main, procs=2) == 2  # both Ps allocated


def test_a_removed_p_gives_its_spans_back() -> None:
    def main() -> tuple[bool, bool, int]:
        got = gort.chan(1)

        def on_p1() -> None:
            end = time.monotonic() + 0.01
            while time.monotonic() < end:
                pass
            got.send((getg("test").p, gort.alloc(3000)))

        p1 = None
        b = None
        for _ in range(20):  # until a goroutine ran on P1
            for _ in range(8):
                gort.go(on_p1)
            for _ in range(8):
                pp, x = got.recv()
                if pp.id == 1 and p1 is None:
                    p1, b = pp, x
                else:
                    x.free()
            if p1 is not None:
                break
        assert p1 is not None and b is not None
        span = b._span
        assert span.mcache is p1.mcache is not None
        gort.gomaxprocs(1)
        deadline = time.monotonic() + 10
        while p1.mcache is not None and time.monotonic() < deadline:
            gort.sleep(0.005)  # P1's M retires once its goroutines have ended
        flushed = p1.mcache is None and span.mcache is None
        filed = span in central[span.sizeclass].partial
        before = mheap_.pages_inuse
        b.free()  # from P0: the span's last object, so its pages go back
        return flushed, filed, before - mheap_.pages_inuse

    flushed, filed, returned = gort.run(main, procs=2)
    assert flushed and filed
    assert returned == class_to_allocnpages[b_class(3000)]


def b_class(n: int) -> int:
    return next(i for i, size in enumerate(class_to_size) if i and size >= n)


def test_the_heap_outlives_run_and_runs_leave_no_threads(procs: int) -> None:
    threads = set(threading.enumerate())

    def main() -> Buffer:
        b = gort.alloc(5000)
        b.view[:5] = b"kept!"
        return b

    b = gort.run(main, procs=procs)
    assert set(threading.enumerate()) <= threads
    assert bytes(b.view[:5]) == b"kept!"  # a Buffer kept from a run stays valid
    b.free()  # and is freed outside any run, through mcache0
    assert sched.allp and all(pp.mcache is None for pp in sched.allp)


def test_allocation_is_thread_safe_outside_goroutines() -> None:
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        try:
            live = []
            for i in range(2000):
                b = gort.alloc(16 + (seed * 7 + i) % 3000)
                b.view[:1] = bytes([seed])
                live.append(b)
                if len(live) > 20:
                    old = live.pop(0)
                    assert old.view[0] == seed
                    old.free()
            for b in live:
                b.free()
        except BaseException as exc:
            errors.append(exc)

    import sys

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        ts = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
    finally:
        sys.setswitchinterval(old)
    assert not errors


# -- the model ---------------------------------------------------------------------


SIZES = st.one_of(
    st.integers(0, 1024),
    st.integers(1025, 32 * KiB),
    st.sampled_from([64, 4 * KiB, 32 * KiB, 32 * KiB + 1, 64 * KiB]),
    st.integers(32 * KiB + 1, 300 * KiB),
)


class AllocMachine(RuleBasedStateMachine):
    """alloc/free in any order against a model: live buffers never overlap,
    keep their contents, and the heap accounts for every byte."""

    buffers = Bundle("buffers")

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, tuple[Buffer, int, int]] = {}  # id -> (buffer, n, fill byte)
        self.stale: list[Buffer] = []  # freed, still referenced: never handed out again
        self.tag = 0
        self.base = gort.mem_stats()

    @rule(target=buffers, n=SIZES)
    def alloc(self, n: int) -> int:
        b = gort.alloc(n)
        assert len(b) == n
        assert id(b) not in self.live  # a recycled object is never one still live
        self.tag = self.tag % 255 + 1
        b.view[:] = bytes([self.tag]) * n
        self.live[id(b)] = (b, n, self.tag)
        return id(b)

    @rule(key=consumes(buffers))
    def free(self, key: int) -> None:
        b, n, tag = self.live.pop(key)
        assert bytes(b.view) == bytes([tag]) * n  # nobody else wrote into it
        b.free()
        self.stale.append(b)
        if len(self.stale) > 5:
            del self.stale[0]  # unreferenced now: its object may be handed out again

    @rule(data=st.data())
    def stale_references_stay_freed(self, data: st.DataObject) -> None:
        if self.stale:
            b = data.draw(st.sampled_from(self.stale))
            with pytest.raises(gort.Fatal, match=r"^runtime: double free$"):
                b.free()
            with pytest.raises(gort.Fatal, match="freed buffer"):
                b.view  # noqa: B018

    @invariant()
    def no_two_live_buffers_overlap(self) -> None:
        extents = sorted(_extent(b) for b, n, _ in self.live.values() if n)
        for (_, end), (start, _) in itertools.pairwise(extents):
            assert end <= start

    @invariant()
    def every_byte_is_accounted_for(self) -> None:
        s = gort.mem_stats()
        assert s.heap_alloc - self.base.heap_alloc == sum(
            _rounded(n) for _, n, _ in self.live.values()
        )
        assert s.heap_objects - self.base.heap_objects == len(self.live)
        assert s.heap_inuse >= s.heap_alloc

    def teardown(self) -> None:
        for b, _, _ in self.live.values():
            b.free()
        self.live.clear()
        # Everything freed: once the P's mcache gives its spans back, every
        # small span goes back to the heap, and the large ones with them.
        freemcache(getg("test").p)
        from gort.runtime.mgcscavenge import sweep

        sweep()
        assert mheap_.pages_inuse == self.start_pages


def test_alloc_free_model() -> None:
    def main() -> None:
        from gort.runtime.mgcscavenge import sweep

        freemcache(getg("test").p)
        sweep()
        AllocMachine.start_pages = mheap_.pages_inuse  # type: ignore[attr-defined]
        run_state_machine_as_test(
            AllocMachine,
            settings=settings(
                max_examples=60,
                stateful_step_count=40,
                deadline=None,
                suppress_health_check=list(HealthCheck),
            ),
        )

    gort.run(main)


def test_spans_go_back_to_mcentral_and_pages_to_the_heap() -> None:
    def main() -> tuple[int, int, int]:
        from gort.runtime.mgcscavenge import sweep

        pp = getg("test").p
        freemcache(pp)
        sweep()
        start = mheap_.pages_inuse
        bufs = [gort.alloc(4 * KiB) for _ in range(9)]  # 2 per span: 5 spans
        grown = mheap_.pages_inuse - start
        c = central[bufs[0]._span.sizeclass]
        freemcache(pp)  # the cached span goes back to mcentral too
        held = len(c.partial) + len(c.full)
        for b in bufs:
            b.free()
        return grown, held, mheap_.pages_inuse - start

    assert gort.run(main) == (5, 5, 0)


# -- the scavenger ------------------------------------------------------------------


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_the_scavenger_returns_a_burst_to_the_os() -> None:
    def main() -> tuple[int, int, int, bool]:
        keep = [gort.alloc(n) for n in (5000, 100 * KiB)]  # in use throughout
        for b in keep:
            b.view[:] = b"k" * len(b)
        rss0 = _rss()
        burst = [gort.alloc(256 * KiB) for _ in range(160)]  # 40 MiB
        for b in burst:
            b.view[::4096] = b"x" * len(range(0, len(b), 4096))  # touch every page
        rss1 = _rss()
        for b in burst:
            b.free()
        deadline = time.monotonic() + 40
        while _rss() > rss0 + (rss1 - rss0) // 5 and time.monotonic() < deadline:
            gort.sleep(0.05)  # sysmon, asleep while every M is, wakes for the scavenger
        intact = all(bytes(b.view) == b"k" * len(b) for b in keep)
        for b in keep:
            b.free()
        released = gort.mem_stats().heap_released
        return rss1 - rss0, _rss() - rss0, released, intact

    grew, left, released, intact = gort.run(main)
    assert grew >= 36 << 20
    assert left <= grew // 5  # RSS came back down
    assert released >= 30 << 20  # and the heap counts it as released
    assert intact  # pages in use were never released


# -- gort.net: read_buffer --------------------------------------------------------


def test_read_buffer_reads_into_allocator_memory(procs: int) -> None:
    def main() -> tuple[list[bytes], int, bool, int]:
        ln = gort.net.listen("tcp", "127.0.0.1:0")
        before = gort.mem_stats().heap_objects

        def peer() -> None:
            with ln.accept() as c:
                c.write(b"hello")
                c.read(1)  # wait, then close: the reader sees EOF

        gort.go(peer)
        got = []
        with gort.net.dial("tcp", str(ln.addr)) as c:
            with c.read_buffer(4096) as buf:
                got.append(bytes(buf.view))
                ours = isinstance(buf, Buffer) and buf._span.sizeclass > 0
            c.write(b"!")
            with c.read_buffer(4096) as buf:
                eof = len(buf)
            c.close()
            try:
                c.read_buffer(100)
            except gort.net.ErrClosed:
                pass
        ln.close()
        return got, eof, ours, gort.mem_stats().heap_objects - before

    got, eof, ours, leaked = gort.run(main, procs=procs)
    assert got == [b"hello"] and eof == 0 and ours
    assert leaked == 0  # the failed read freed its buffer


def test_frees_from_the_other_p_under_thread_switches(fast_switch: None) -> None:
    # Buffers allocated on one P and freed on the other (the lock-free free into a span
    # the owner is allocating from, the locked one into spans it gave back), with the GIL
    # handed over every microsecond: nothing is lost, corrupted or handed out twice.
    def main() -> tuple[int, int, set[int]]:
        from gort.runtime.mgcscavenge import sweep

        base = gort.mem_stats()
        handoff = gort.chan(64)
        done = gort.chan()
        pids: set[int] = set()

        def producer(k: int) -> None:
            end = time.monotonic() + 0.01
            while time.monotonic() < end:
                pass  # keep this P busy so that the other one takes the consumer
            pids.add(getg("test").p.id)
            for i in range(1500):
                n = (i * 37 + k * 11) % 5000 + 1
                b = gort.alloc(n)
                b.view[:] = bytes([k]) * n
                handoff.send((b, k))
            handoff.send(None)

        def consumer() -> None:
            pids.add(getg("test").p.id)
            ends = 0
            while ends < 2:
                item = handoff.recv()
                if item is None:
                    ends += 1
                    continue
                b, k = item
                assert bytes(b.view) == bytes([k]) * len(b)
                b.free()
            done.send(None)

        gort.go(consumer)
        gort.go(producer, 1)
        gort.go(producer, 2)
        done.recv()
        sweep()
        s = gort.mem_stats()
        return s.heap_objects - base.heap_objects, s.mallocs - base.mallocs, pids

    objects, mallocs, pids = gort.run(main, procs=2)
    assert (objects, mallocs) == (0, 3000)
    assert pids == {0, 1}  # both Ps took part


def test_a_goroutine_waiting_in_read_buffer_holds_no_buffer() -> None:
    def main() -> tuple[int, bytes]:
        ln = gort.net.listen("tcp", "127.0.0.1:0")
        out = gort.chan(1)

        def reader() -> None:
            with ln.accept() as c, c.read_buffer(4096) as buf:
                out.send(bytes(buf.view))

        gort.go(reader)
        with gort.net.dial("tcp", str(ln.addr)) as c:
            before = gort.mem_stats().heap_objects
            for _ in range(20):
                gort.gosched()  # the reader accepts, tries to read, parks
            waiting = gort.mem_stats().heap_objects - before
            c.write(b"data")
            got = out.recv()
        ln.close()
        return waiting, got

    assert gort.run(main) == (0, b"data")


def test_collections_inside_the_allocator_do_not_deadlock() -> None:
    # Buffers in reference cycles die when the cyclic collector runs, and it runs on
    # any allocation of a Python object, also while an mcentral's or the heap's lock is
    # held: their finalizers must not take those locks (they queue the slot instead).
    def churn(done: list[bool]) -> None:
        class Holder:
            pass

        for i in range(3000):
            h = Holder()
            h.me = h  # type: ignore[attr-defined]  # a cycle: freed only by the collector
            h.buf = gort.alloc((4096, 40 * KiB, 3000)[i % 3])  # type: ignore[attr-defined]
            keep = [gort.alloc(4096) for _ in range(3)]  # refills: mcentral and heap locks
            for b in keep:
                b.free()
        done.append(True)

    old = gc.get_threshold()
    gc.set_threshold(1)  # collect at nearly every allocation
    done: list[bool] = []
    try:
        t = threading.Thread(target=churn, args=(done,), daemon=True)
        t.start()
        t.join(50)
    finally:
        gc.set_threshold(*old)
    assert done, "the allocator deadlocked in a finalizer"
    gc.collect()
    before = gort.mem_stats()
    assert before.finalizer_frees >= 3000 and not gort.runtime.mfinal.finq
