"""Package sync: Mutex, RWMutex, WaitGroup, Once, Cond, Pool, Semaphore."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable
from typing import Any

import pytest

import gort
from gort.sync.mutex import LOCKED, STARVING


def _drain(ch: gort.Chan) -> list[Any]:
    out = []
    while True:
        i, v = gort.select(ch.recv, gort.default)
        if i == 1:
            return out
        out.append(v)


# ---------------------------------------------------------------------------
# Mutex


def test_mutex_excludes_goroutines_that_yield_inside(procs: int) -> None:
    def main() -> int:
        mu = gort.Mutex()
        count = [0]
        wg = gort.WaitGroup()

        def worker() -> None:
            for _ in range(300):
                with mu:
                    v = count[0]
                    gort.gosched()  # another goroutine runs here, and must not get in
                    count[0] = v + 1

        for _ in range(5):
            wg.go(worker)
        wg.wait()
        return count[0]

    assert gort.run(main, procs=procs) == 1500


def test_mutex_try_lock(procs: int) -> None:
    def main() -> None:
        mu = gort.Mutex()
        assert mu.try_lock() is True
        assert mu.try_lock() is False
        got = gort.chan()
        gort.go(lambda: got.send(mu.try_lock()))
        assert got.recv() is False
        mu.unlock()
        assert mu.try_lock() is True
        mu.unlock()
        with mu:
            assert mu.try_lock() is False
        assert mu.state == 0

    gort.run(main, procs=procs)


def test_mutex_unlocked_by_another_goroutine(procs: int) -> None:
    def main() -> str:
        mu = gort.Mutex()
        mu.lock()
        order = gort.chan(2)

        def locker() -> None:
            mu.lock()
            order.send("locker got it")
            mu.unlock()

        gort.go(locker)
        gort.sleep(0.01)
        order.send("main unlocks")
        gort.go(mu.unlock)  # Go's Mutex is not tied to a goroutine
        return f"{order.recv()}, {order.recv()}"

    assert gort.run(main, procs=procs) == "main unlocks, locker got it"


def test_unlock_of_unlocked_mutex_is_fatal(capfd: pytest.CaptureFixture[str]) -> None:
    def main() -> None:
        mu = gort.Mutex()
        try:
            mu.unlock()
        except Exception:  # like Go's recover, except cannot stop a fatal error
            pass
        raise AssertionError("unreachable")

    with pytest.raises(gort.Fatal, match=r"^sync: unlock of unlocked mutex$"):
        gort.run(main)
    err = capfd.readouterr().err
    assert err.startswith("fatal error: sync: unlock of unlocked mutex\n")
    assert "goroutine 1 [running]:" in err


@pytest.mark.parametrize(
    ("reason", "body"),
    [
        ("sync.Mutex.Lock", "mu = gort.Mutex(); mu.lock(); mu.lock()"),
        ("sync.RWMutex.RLock", "rw = gort.RWMutex(); rw.lock(); rw.rlock()"),
        ("sync.RWMutex.Lock", "rw = gort.RWMutex(); rw.rlock(); rw.lock()"),
        ("sync.WaitGroup.Wait", "wg = gort.WaitGroup(); wg.add(1); wg.wait()"),
        ("sync.Cond.Wait", "mu = gort.Mutex(); c = gort.Cond(mu); mu.lock(); c.wait()"),
    ],
)
def test_deadlock_on_a_sync_primitive(
    capfd: pytest.CaptureFixture[str], reason: str, body: str
) -> None:
    def main() -> None:
        exec(body, {"gort": gort})

    with pytest.raises(gort.Deadlock, match="all goroutines are asleep - deadlock!"):
        gort.run(main)
    err = capfd.readouterr().err
    assert err.startswith("fatal error: all goroutines are asleep - deadlock!\n")
    assert f"goroutine 1 [{reason}]:" in err


def test_deadlock_between_two_mutexes(capfd: pytest.CaptureFixture[str]) -> None:
    def main() -> None:
        a, b = gort.Mutex(), gort.Mutex()

        def other() -> None:
            with b:
                gort.sleep(0.01)
                a.lock()

        gort.go(other)
        with a:
            gort.sleep(0.005)
            b.lock()

    with pytest.raises(gort.Deadlock):
        gort.run(main)
    assert capfd.readouterr().err.count("[sync.Mutex.Lock]:") == 2


def test_starvation_mode_engages_and_ends() -> None:
    # A holds the mutex for 2 ms at a time and re-locks at once: in normal mode
    # it always wins against the woken waiter B (it is running). After B has
    # waited over 1 ms the mutex turns to starvation mode and is handed to B.
    def main() -> tuple[int, bool, int]:
        mu = gort.Mutex()
        got = gort.chan(1)
        seen_starving = False
        b_got_at = -1

        def b() -> None:
            mu.lock()
            got.send(None)
            mu.unlock()

        rounds = 0
        for rounds in range(1, 200):
            mu.lock()
            if rounds == 1:
                gort.go(b)
            gort.sleep(0.002)  # B waits here, parked, for over 1 ms
            seen_starving |= bool(mu.state & STARVING)
            mu.unlock()
            if len(got):
                b_got_at = rounds
                break
        got.recv()
        return b_got_at, seen_starving, mu.state

    b_got_at, seen_starving, state = gort.run(main)
    assert seen_starving, "the mutex never entered starvation mode"
    assert 1 <= b_got_at <= 5, f"B got the mutex only after {b_got_at} rounds"
    assert state == 0  # normal mode again, unlocked, no waiters


def test_starvation_mode_hands_over_in_fifo_order() -> None:
    def main() -> list[int]:
        mu = gort.Mutex()
        order = gort.chan(10)

        def waiter(i: int) -> None:
            mu.lock()
            order.send(i)
            gort.sleep(0.002)  # everyone behind waits over 1 ms
            mu.unlock()

        mu.lock()
        for i in range(5):
            gort.go(waiter, i)
            gort.sleep(0.001)  # they queue in this order
        gort.sleep(0.002)
        mu.unlock()
        out = [order.recv() for _ in range(5)]
        with mu:
            assert not mu.state & STARVING
        return out

    assert gort.run(main) == [0, 1, 2, 3, 4]


def test_mutex_at_two_procs_200000_increments(fast_switch: None) -> None:
    # Threads switch every microsecond; any race in the Mutex loses increments.
    def main() -> tuple[int, int]:
        mu = gort.Mutex()
        count = [0]
        threads: set[int] = set()
        wg = gort.WaitGroup()

        def worker(n: int) -> None:
            threads.add(threading.get_ident())
            for i in range(n):
                mu.lock()
                count[0] += 1
                mu.unlock()
                if i % 1000 == 0:
                    threads.add(threading.get_ident())

        for _ in range(8):
            wg.go(worker, 25_000)
        wg.wait()
        return count[0], len(threads)

    count, nthreads = gort.run(main, procs=2)
    assert count == 200_000
    assert nthreads == 2, "the work never ran on both Ps"


def test_a_parked_lock_is_cleaned_up_when_the_run_ends() -> None:
    mu = gort.Mutex()
    wg = gort.WaitGroup()
    c = gort.Cond(gort.Mutex())

    def main() -> None:
        mu.lock()
        wg.add(1)
        gort.go(mu.lock)
        gort.go(wg.wait)

        def cond_wait() -> None:
            with c.l:
                c.wait()

        gort.go(cond_wait)
        gort.sleep(0.01)
        assert mu.state >> 3 == 1 and wg.waiters == 1

    gort.run(main)
    # The unwound waiters left: nobody is counted, nobody is queued.
    assert mu.state == LOCKED and not mu._sema.waitq
    assert wg.waiters == 0 and not wg._sema.waitq
    assert not c._notify.waiters

    def again() -> None:
        mu.unlock()
        with mu:
            pass
        wg.done()
        wg.wait()

    gort.run(again)
    assert mu.state == 0


# ---------------------------------------------------------------------------
# RWMutex


def test_parked_rwmutex_waiters_are_cleaned_up_when_the_run_ends() -> None:
    rw = gort.RWMutex()

    def main() -> None:
        rw.rlock()
        gort.go(rw.lock)  # waits for main's read lock
        gort.sleep(0.005)
        gort.go(rw.rlock)  # waits behind the pending writer
        gort.go(rw.lock)  # waits for the first writer (on the writers' Mutex)
        gort.sleep(0.005)
        assert rw.rc < 0 and rw.rwait == 1

    gort.run(main)
    # Only main's read lock is left; nobody is queued, no unit is pending.
    assert (rw.rc, rw.rwait, rw._w.state) == (1, 0, 0)
    for sem in (rw._reader_sem, rw._writer_sem, rw._w._sema):
        assert sem.count == 0 and not sem.waitq

    def again() -> None:
        rw.runlock()
        with rw:
            pass
        with rw.rlocker():
            pass

    gort.run(again)
    assert (rw.rc, rw.rwait) == (0, 0)


def test_rwmutex_readers_share_writers_exclude(procs: int) -> None:
    def main() -> list[str]:
        rw = gort.RWMutex()
        log = gort.chan(10)
        both_in = gort.chan()

        def reader(i: int) -> None:
            rw.rlock()
            log.send(f"r{i} in")
            if i == 0:
                both_in.recv()  # holds its read lock until reader 1 is in too
            else:
                both_in.send(None)
            rw.runlock()

        rw.rlock()
        assert rw.try_lock() is False and rw.try_rlock() is True
        rw.runlock()
        rw.runlock()
        gort.go(reader, 0)
        gort.go(reader, 1)
        out = [log.recv(), log.recv()]
        with rw:
            out.append("writer in")
            assert rw.try_rlock() is False
        return sorted(out[:2]) + out[2:]

    assert gort.run(main, procs=procs) == ["r0 in", "r1 in", "writer in"]


def test_rwmutex_waiting_writer_blocks_new_readers(procs: int) -> None:
    def main() -> list[str]:
        rw = gort.RWMutex()
        log = gort.chan(10)

        def writer() -> None:
            rw.lock()
            log.send("writer")
            gort.sleep(0.005)
            rw.unlock()

        def late_reader() -> None:
            rw.rlock()
            log.send("late reader")
            rw.runlock()

        rw.rlock()
        gort.go(writer)
        gort.sleep(0.005)  # the writer waits for this read lock
        gort.go(late_reader)
        gort.sleep(0.005)  # the late reader must wait behind the writer
        assert len(log) == 0
        rw.runlock()
        return [log.recv(), log.recv()]

    assert gort.run(main, procs=procs) == ["writer", "late reader"]


def test_rwmutex_readers_waiting_for_a_writer_all_get_in(procs: int) -> None:
    def main() -> int:
        rw = gort.RWMutex()
        inside = gort.chan(10)
        release = gort.chan()
        rw.lock()

        def reader() -> None:
            with rw.rlocker():
                inside.send(None)
                release.recv()

        for _ in range(5):
            gort.go(reader)
        gort.sleep(0.005)
        assert len(inside) == 0
        rw.unlock()
        for _ in range(5):
            inside.recv()  # all five hold the read lock at once
        n = len(inside) + 5
        release.close()
        rw.lock()
        rw.unlock()
        return n

    assert gort.run(main, procs=procs) == 5


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("gort.RWMutex().runlock()", "sync: RUnlock of unlocked RWMutex"),
        ("gort.RWMutex().unlock()", "sync: Unlock of unlocked RWMutex"),
    ],
)
def test_rwmutex_misuse_is_fatal(body: str, message: str) -> None:
    with pytest.raises(gort.Fatal, match=message):
        gort.run(lambda: exec(body, {"gort": gort}))


# ---------------------------------------------------------------------------
# WaitGroup


def test_waitgroup_waits_for_every_goroutine(procs: int) -> None:
    def main() -> list[int]:
        wg = gort.WaitGroup()
        out: list[int] = []

        def work(i: int) -> None:
            gort.sleep(0.001 * (i % 3))
            out.append(i)

        for i in range(50):
            wg.go(work, i)
        wg.add(1)
        gort.go(lambda: (out.append(100), wg.done()))
        wg.wait()
        wg.wait()  # a second wait at zero returns at once
        return sorted(out)

    assert gort.run(main, procs=procs) == [*range(50), 100]


def test_waitgroup_with_several_waiters(procs: int) -> None:
    def main() -> int:
        wg = gort.WaitGroup()
        woke = gort.chan(10)
        wg.add(2)
        for _ in range(5):
            gort.go(lambda: (wg.wait(), woke.send(None)))
        gort.sleep(0.005)
        wg.done()
        gort.sleep(0.005)
        assert len(woke) == 0
        wg.done()
        for _ in range(5):
            woke.recv()
        return wg.counter

    assert gort.run(main, procs=procs) == 0


def test_waitgroup_negative_counter_panics() -> None:
    def main() -> None:
        wg = gort.WaitGroup()
        wg.add(1)
        wg.done()
        with pytest.raises(gort.Panic, match=r"^sync: negative WaitGroup counter$"):
            wg.done()

    gort.run(main)


def test_waitgroup_reused_before_wait_returned_panics() -> None:
    def main() -> None:
        wg = gort.WaitGroup()
        wg.add(1)
        gort.go(wg.wait)
        gort.gosched()  # the waiter parks
        wg.done()  # wakes it...
        wg.add(1)  # ...and reuses the group before it ran
        gort.sleep(0.01)

    with pytest.raises(
        gort.Panic, match="sync: WaitGroup is reused before previous Wait has returned"
    ):
        gort.run(main)


# ---------------------------------------------------------------------------
# Once


def test_once_under_concurrent_first_calls(procs: int) -> None:
    def main() -> list[int]:
        once = gort.Once()
        calls: list[int] = []
        seen = gort.chan(20)

        def init() -> None:
            calls.append(gort.goid())
            gort.sleep(0.01)  # the other callers arrive meanwhile
            calls.append(-1)

        def caller() -> None:
            once.do(init)
            seen.send(len(calls))  # every caller sees init complete

        for _ in range(20):
            gort.go(caller)
        return [seen.recv() for _ in range(20)] + [len(calls)]

    assert gort.run(main, procs=procs) == [2] * 21


def test_once_counts_a_raising_function_as_done() -> None:
    def main() -> list[str]:
        once = gort.Once()
        log: list[str] = []

        def boom() -> None:
            log.append("boom")
            raise ValueError("first")

        with pytest.raises(ValueError, match="first"):
            once.do(boom)
        once.do(lambda: log.append("second"))
        return log

    assert gort.run(main) == ["boom"]


def test_once_func_and_once_value() -> None:
    def main() -> None:
        calls: list[int] = []
        f = gort.once_func(lambda: calls.append(1))
        f()
        f()
        assert calls == [1]
        v = gort.once_value(lambda: (calls.append(2), "value")[1])
        assert v() == "value" and v() == "value" and calls == [1, 2]

        def bad() -> int:
            calls.append(3)
            raise KeyError("k")

        g = gort.once_value(bad)
        errors = []
        for _ in range(3):
            try:
                g()
            except KeyError as e:
                errors.append(e)
        assert len(errors) == 3 and errors[0] is errors[1] is errors[2]  # the same panic value
        assert calls == [1, 2, 3]
        h = gort.once_func(lambda: bad())
        for _ in range(2):
            with pytest.raises(KeyError):
                h()
        assert calls == [1, 2, 3, 3]

    gort.run(main)


# ---------------------------------------------------------------------------
# Cond


def test_cond_signal_wakes_one_broadcast_wakes_all(procs: int) -> None:
    def main() -> tuple[int, int]:
        mu = gort.Mutex()
        cond = gort.Cond(mu)
        state = {"go": 0}
        woke = gort.chan(10)

        def waiter(i: int) -> None:
            with mu:
                while state["go"] == 0:
                    cond.wait()
                state["go"] -= 1 if state["go"] > 0 else 0
            woke.send(i)

        for i in range(4):
            gort.go(waiter, i)
        gort.sleep(0.01)
        with mu:
            state["go"] = 1
            cond.signal()
        gort.sleep(0.01)
        one = len(woke)
        with mu:
            state["go"] = 100
            cond.broadcast()
        for _ in range(4):
            woke.recv()
        return one, len(woke)

    assert gort.run(main, procs=procs) == (1, 0)


def test_cond_signal_before_park_is_not_lost(procs: int) -> None:
    # The waiter's unlock hands the mutex to the signaller before the waiter parks.
    def main() -> str:
        mu = gort.Mutex()
        cond = gort.Cond(mu)
        flag = [False]
        done = gort.chan()

        def signaller() -> None:
            with mu:
                flag[0] = True
                cond.signal()

        def waiter() -> None:
            with mu:
                gort.go(signaller)
                while not flag[0]:
                    cond.wait()
            done.send("woke")

        gort.go(waiter)
        return str(done.recv())

    assert gort.run(main, procs=procs) == "woke"


# ---------------------------------------------------------------------------
# Pool


def test_pool_reuses_and_creates(procs: int) -> None:
    def main() -> None:
        made: list[object] = []

        def new() -> object:
            made.append(object())
            return made[-1]

        pool = gort.Pool(new=new)
        a = pool.get()
        assert made == [a]
        pool.put(a)
        assert pool.get() is a
        b, c = object(), object()
        pool.put(b)
        pool.put(c)
        assert {pool.get(), pool.get()} == {b, c}
        assert len(made) == 1
        assert gort.Pool().get() is None
        pool.put(None)  # ignored, as Go ignores nil
        assert pool.get() is made[1]

    gort.run(main, procs=procs)


def test_pool_is_emptied_by_two_collections() -> None:
    def main() -> list[Any]:
        pool = gort.Pool()
        x, y = object(), object()
        pool.put(x)
        gc.collect()
        got = [pool.get()]  # survives one collection, from the victim cache
        pool.put(y)
        gc.collect()
        gc.collect()
        got.append(pool.get())
        return [got[0] is x, got[1]]

    assert gort.run(main) == [True, None]


def test_pool_get_steals_from_another_p() -> None:
    def main() -> bool:
        pool = gort.Pool()
        objs = [object() for _ in range(50)]
        ready = gort.chan()
        other = gort.chan()

        def filler() -> None:
            other.send(threading.get_ident())
            for o in objs:
                pool.put(o)
            ready.send(None)

        me = threading.get_ident()
        while True:  # until the filler runs on the other P
            gort.go(filler)
            t = other.recv()
            ready.recv()
            if t != me:
                break
        got = {id(pool.get()) for _ in range(10)}
        return got <= {id(o) for o in objs} and len(got) == 10

    assert gort.run(main, procs=2) is True


# ---------------------------------------------------------------------------
# Semaphore


def test_semaphore_basics(procs: int) -> None:
    def main() -> None:
        sem = gort.Semaphore(3)
        sem.acquire(2)
        assert sem.try_acquire(2) is False
        assert sem.try_acquire() is True
        with pytest.raises(gort.Panic, match="semaphore: released more than held"):
            sem.release(4)
        sem.release(3)
        assert sem.try_acquire(3) is True
        sem.release(3)

    gort.run(main, procs=procs)


def test_semaphore_large_waiter_is_not_starved(procs: int) -> None:
    def main() -> list[str]:
        sem = gort.Semaphore(4)
        order = gort.chan(20)
        sem.acquire(1)

        def want(k: int, name: str) -> None:
            sem.acquire(k)
            order.send(name)
            gort.sleep(0.001)
            sem.release(k)

        gort.go(want, 4, "big")
        gort.sleep(0.005)
        for i in range(3):
            gort.go(want, 1, f"small{i}")  # they would fit, but the big one is first
        gort.sleep(0.005)
        assert len(order) == 0
        assert sem.try_acquire(1) is False
        sem.release(1)
        return [order.recv() for _ in range(4)]

    got = gort.run(main, procs=procs)
    assert got[0] == "big" and sorted(got[1:]) == ["small0", "small1", "small2"]


def test_semaphore_acquire_with_context(procs: int) -> None:
    def main() -> None:
        sem = gort.Semaphore(2)
        sem.acquire(2)
        ctx, cancel = gort.with_timeout(gort.background(), 0.01)
        with pytest.raises(gort.DeadlineExceeded):
            sem.acquire(1, ctx)
        cancel()
        sem.release(2)
        with pytest.raises(gort.DeadlineExceeded):
            sem.acquire(1, ctx)  # done before the call: fails even though units are free
        sem.acquire(2)
        with pytest.raises(gort.DeadlineExceeded):  # more than the size: waits for ctx
            ctx2, _ = gort.with_timeout(gort.background(), 0.01)
            sem.acquire(3, ctx2)
        # A cancelled head waiter leaves; the one behind it gets in.
        ctx3, cancel3 = gort.with_cancel(gort.background())
        got = gort.chan(2)

        def big() -> None:
            with pytest.raises(gort.Canceled):
                sem.acquire(2, ctx3)
            got.send("big gave up")

        gort.go(big)
        gort.sleep(0.002)
        gort.go(lambda: (sem.acquire(1), got.send("small")))
        gort.sleep(0.002)
        sem.release(1)
        assert len(got) == 0
        cancel3()
        assert {got.recv(), got.recv()} == {"small", "big gave up"}

    gort.run(main, procs=procs)


def _settle() -> None:
    for _ in range(3):
        gort.gosched()


def test_semaphore_against_a_model() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    ops = st.lists(
        st.one_of(
            st.tuples(st.just("acquire"), st.integers(1, 5)),
            st.tuples(st.just("acquire_ctx"), st.integers(1, 5)),
            st.tuples(st.just("try"), st.integers(1, 5)),
            st.tuples(st.just("release"), st.integers(0, 20)),
            st.tuples(st.just("cancel"), st.integers(0, 20)),
        ),
        max_size=30,
    )

    @settings(max_examples=60, deadline=None)
    @given(size=st.integers(1, 6), script=ops)
    def check(size: int, script: list[tuple[str, int]]) -> None:
        def main() -> None:
            sem = gort.Semaphore(size)
            granted = gort.chan(100)
            # The model: units in use, the FIFO queue, the holders.
            cur = 0
            queue: list[tuple[int, int]] = []  # (request id, k)
            held: list[tuple[int, int]] = []
            cancels: dict[int, Callable[[], None]] = {}
            nreq = 0
            ever_granted: set[int] = set()
            reported: set[int] = set()

            def grant() -> None:
                nonlocal cur
                while queue and size - cur >= queue[0][1]:
                    r = queue.pop(0)
                    cur += r[1]
                    held.append(r)
                    ever_granted.add(r[0])

            def request(rid: int, k: int, ctx: gort.Context | None) -> None:
                try:
                    sem.acquire(k, ctx)
                except gort.Canceled:
                    return
                granted.send(rid)

            for op, arg in script:
                if op in ("acquire", "acquire_ctx"):
                    if arg > size:
                        continue  # would wait forever: not modelled
                    rid, nreq = nreq, nreq + 1
                    ctx = None
                    if op == "acquire_ctx":
                        ctx, cancels[rid] = gort.with_cancel(gort.background())
                    queue.append((rid, arg))
                    grant()
                    gort.go(request, rid, arg, ctx)
                elif op == "try":
                    ok = not queue and size - cur >= arg
                    assert sem.try_acquire(arg) is ok
                    if ok:
                        cur += arg
                        held.append((-1, arg))
                elif op == "release" and held:
                    _, k = held.pop(arg % len(held))
                    cur -= k
                    sem.release(k)
                    grant()
                elif op == "cancel" and cancels:
                    rid = sorted(cancels)[arg % len(cancels)]
                    cancels.pop(rid)()
                    if any(r[0] == rid for r in queue):
                        queue[:] = [r for r in queue if r[0] != rid]
                        grant()
                _settle()
                reported.update(_drain(granted))
                assert reported == ever_granted
                assert sem.cur == cur
            for cancel in cancels.values():
                cancel()

        gort.run(main)

    check()


def test_waitgroup_against_a_model() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    ops = st.lists(
        st.one_of(
            st.tuples(st.just("add"), st.integers(-2, 3)),
            st.tuples(st.just("wait"), st.just(0)),
        ),
        max_size=30,
    )

    @settings(max_examples=80, deadline=None)
    @given(script=ops)
    def check(script: list[tuple[str, int]]) -> None:
        def main() -> None:
            wg = gort.WaitGroup()
            woke = gort.chan(100)
            counter = 0
            waiting = 0
            for op, arg in script:
                if op == "add":
                    if counter + arg < 0:
                        with pytest.raises(gort.Panic, match="negative WaitGroup counter"):
                            wg.add(arg)
                        return  # Go's WaitGroup is unusable after this panic
                    wg.add(arg)
                    counter += arg
                    if counter == 0:
                        expect, waiting = waiting, 0
                    else:
                        expect = 0
                else:
                    gort.go(lambda: (wg.wait(), woke.send(None)))
                    if counter:
                        waiting += 1
                        expect = 0
                    else:
                        expect = 1
                _settle()
                assert len(_drain(woke)) == expect
                assert wg.counter == counter and wg.waiters == waiting
            if counter:
                wg.add(-counter)
                _settle()
                assert len(_drain(woke)) == waiting

        gort.run(main)

    check()
