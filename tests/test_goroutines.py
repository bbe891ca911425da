"""Goroutines: go, gosched, goexit, goid, num_goroutine, gomaxprocs, and panics inside them."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

import gort


def _wait_until(cond: Callable[[], bool], spins: int = 200_000) -> bool:
    """Yield the processor until ``cond()`` holds (bounded, so a bug fails instead of hanging)."""
    for _ in range(spins):
        if cond():
            return True
        gort.gosched()
    return bool(cond())


def _panic_block(text: str, first_line: str) -> list[str]:
    """The lines of a panic report starting at ``first_line`` (which must be present)."""
    lines = text.splitlines()
    assert first_line in lines, text
    return lines[lines.index(first_line) :]


# --- go -----------------------------------------------------------------------------------


def test_go_returns_none_and_passes_args_and_kwargs(procs: int) -> None:
    seen: list[tuple[object, ...]] = []

    def worker(a: int, b: str, *, c: list[int], done: gort.chan) -> None:
        seen.append((a, b, c))
        done.close()

    def main() -> object:
        done = gort.chan()
        result = gort.go(worker, 1, "x", c=[3], done=done)
        done.recv()
        return result

    assert gort.run(main, procs=procs) is None
    assert seen == [(1, "x", [3])]


def test_go_accepts_bound_methods_and_builtins(procs: int) -> None:
    def main() -> list[int]:
        out = gort.chan(10)
        for i in range(10):
            gort.go(out.send, i)
        return sorted(out.recv() for _ in range(10))

    assert gort.run(main, procs=procs) == list(range(10))


def test_thousand_goroutines_all_run(procs: int) -> None:
    n = 1000

    def square(i: int, out: gort.chan) -> None:
        out.send(i * i)

    def main() -> list[int]:
        out = gort.chan()
        for i in range(n):
            gort.go(square, i, out)
        return sorted(out.recv() for _ in range(n))

    assert gort.run(main, procs=procs) == [i * i for i in range(n)]


def test_goroutines_start_goroutines(procs: int) -> None:
    depth = 200

    def link(level: int, out: gort.chan) -> None:
        if level == depth:
            out.send(level)
        else:
            gort.go(link, level + 1, out)

    def main() -> int:
        out = gort.chan()
        gort.go(link, 0, out)
        value: int = out.recv()
        return value

    assert gort.run(main, procs=procs) == depth


# --- gosched ------------------------------------------------------------------------------


def test_gosched_lets_another_goroutine_run(procs: int) -> None:
    def main() -> list[int]:
        flag: list[int] = []
        gort.go(flag.append, 1)
        _wait_until(lambda: bool(flag))
        return flag

    assert gort.run(main, procs=procs) == [1]


def test_gosched_ping_pong_between_spinning_goroutines(procs: int) -> None:
    # Two goroutines that only ever gosched take turns on a shared counter: each waits for
    # the other's move, so neither can make progress unless gosched really yields.
    rounds = 300

    def player(me: int, state: list[int], done: gort.chan) -> None:
        for _ in range(rounds):
            ok = _wait_until(lambda: state[0] % 2 == me)
            assert ok, f"player {me} never got its turn"
            state[0] += 1
        done.send(me)

    def main() -> int:
        state = [0]
        done = gort.chan()
        gort.go(player, 0, state, done)
        gort.go(player, 1, state, done)
        done.recv()
        done.recv()
        return state[0]

    assert gort.run(main, procs=procs) == 2 * rounds


# --- goexit -------------------------------------------------------------------------------


def test_goexit_runs_finally_blocks_and_ends_goroutine(procs: int) -> None:
    log: list[str] = []

    def inner() -> None:
        try:
            gort.goexit()
            log.append("after goexit")
        finally:
            log.append("inner finally")

    def worker(done: gort.chan) -> None:
        try:
            inner()
            log.append("after inner")
        finally:
            log.append("worker finally")
            done.close()

    def main() -> None:
        done = gort.chan()
        gort.go(worker, done)
        done.recv()

    assert gort.run(main, procs=procs) is None
    assert log == ["inner finally", "worker finally"]


def test_goexit_is_not_caught_by_except_exception(procs: int) -> None:
    # Go's recover returns nil during Goexit: ordinary error handling must not stop it.
    log: list[str] = []

    def worker(done: gort.chan) -> None:
        try:
            try:
                gort.goexit()
            except Exception:
                log.append("caught")
            log.append("continued")
        finally:
            done.close()

    def main() -> list[str]:
        done = gort.chan()
        gort.go(worker, done)
        done.recv()
        return log

    assert gort.run(main, procs=procs) == []


def test_finally_during_goexit_may_block_on_channels(procs: int) -> None:
    # Go's deferred calls run during Goexit and may block (defer wg.Done(), defer ch <- x).
    def worker(out: gort.chan) -> None:
        try:
            gort.goexit()
        finally:
            out.send("deferred send")

    def main() -> str:
        out = gort.chan()
        gort.go(worker, out)
        value: str = out.recv()
        return value

    assert gort.run(main, procs=procs) == "deferred send"


def test_goexit_in_goroutine_is_not_a_panic(procs: int) -> None:
    def main() -> int:
        done = gort.chan()

        def quitter() -> None:
            try:
                gort.goexit()
            finally:
                done.close()

        gort.go(quitter)
        done.recv()
        return 7

    assert gort.run(main, procs=procs) == 7


def test_goexit_in_main_lets_others_finish_then_reports_deadlock(
    procs: int, capfd: pytest.CaptureFixture[str]
) -> None:
    # Go: main calling runtime.Goexit lets the other goroutines run to completion; when none
    # is left the program dies with "no goroutines (main called runtime.Goexit) - deadlock!".
    log: list[object] = []
    gate = gort.chan()

    def worker() -> None:
        gate.recv()
        for i in range(3):
            gort.gosched()
            log.append(i)

    def main() -> None:
        gort.go(worker)
        try:
            gort.goexit()
        finally:
            log.append("main finally")
            gate.close()

    with pytest.raises(gort.Deadlock):
        gort.run(main, procs=procs)
    assert log == ["main finally", 0, 1, 2]
    err = capfd.readouterr().err
    assert "fatal error: no goroutines (main called runtime.Goexit) - deadlock!" in err


# --- goid ---------------------------------------------------------------------------------


def test_goid_of_main_is_one(procs: int) -> None:
    assert gort.run(gort.goid, procs=procs) == 1


def test_goids_are_unique_stable_and_increasing(procs: int) -> None:
    n = 200

    def worker(index: int, out: gort.chan) -> None:
        first = gort.goid()
        gort.gosched()
        out.send((index, first, gort.goid()))

    def main() -> list[tuple[int, int, int]]:
        out = gort.chan()
        for i in range(n):
            gort.go(worker, i, out)
        return sorted(out.recv() for _ in range(n))

    reports = gort.run(main, procs=procs)
    ids = [first for _, first, _ in reports]
    assert all(first == again for _, first, again in reports), "goid changed within a goroutine"
    assert len(set(ids)) == n
    assert 1 not in ids
    # created one after the other by main: ids increase in creation order
    assert ids == sorted(ids)


# --- num_goroutine ------------------------------------------------------------------------


def test_num_goroutine_counts_live_goroutines(procs: int) -> None:
    def main() -> tuple[int, int, int]:
        alone = gort.num_goroutine()
        ready = gort.chan()
        release = gort.chan()

        def worker() -> None:
            ready.send(None)
            release.recv()

        for _ in range(10):
            gort.go(worker)
        # Go counts goroutines that were created but have not run yet
        assert gort.num_goroutine() == 11
        for _ in range(10):
            ready.recv()
        during = gort.num_goroutine()
        release.close()
        _wait_until(lambda: gort.num_goroutine() == 1)
        return alone, during, gort.num_goroutine()

    assert gort.run(main, procs=procs) == (1, 11, 1)


# --- gomaxprocs ---------------------------------------------------------------------------


def test_gomaxprocs_reads_the_procs_argument(procs: int) -> None:
    assert gort.run(lambda: (gort.gomaxprocs(), gort.gomaxprocs(None)), procs=procs) == (
        procs,
        procs,
    )


def test_gomaxprocs_sets_and_returns_previous(procs: int) -> None:
    def main() -> tuple[int, ...]:
        first = gort.gomaxprocs(3)
        now = gort.gomaxprocs()
        second = gort.gomaxprocs(procs)
        return first, now, second, gort.gomaxprocs()

    assert gort.run(main, procs=procs) == (procs, 3, 3, procs)


def test_gomaxprocs_below_one_only_reads(procs: int) -> None:
    # Go: runtime.GOMAXPROCS(n) with n < 1 returns the current value and changes nothing.
    def main() -> tuple[int, int, int]:
        return gort.gomaxprocs(0), gort.gomaxprocs(-1), gort.gomaxprocs()

    assert gort.run(main, procs=procs) == (procs, procs, procs)


def test_work_continues_across_gomaxprocs_changes(procs: int) -> None:
    def relay(src: gort.chan, dst: gort.chan) -> None:
        for v in src:
            dst.send(v + 1)
        dst.close()

    def main() -> list[int]:
        a, b = gort.chan(), gort.chan()
        gort.go(relay, a, b)
        got = []
        for i, n in enumerate([1, 2, 3, 1, 2, procs] * 20):
            gort.gomaxprocs(n)
            a.send(i)
            got.append(b.recv())
        a.close()
        assert b.recv2() == (None, False)
        assert gort.gomaxprocs() == procs
        return got

    assert gort.run(main, procs=procs) == [i + 1 for i in range(120)]


def _busy(seconds: float) -> None:
    """Hold the processor without yielding, so an idle P has reason to take other work."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_goroutines_parked_on_a_removed_p_still_finish(procs: int) -> None:
    # Goroutines spread over the Ps and park; GOMAXPROCS then shrinks to 1 and they are
    # woken: every one must still run to completion (and again after growing back).
    n = 20

    def main() -> tuple[int, int]:
        gate, ready, done = gort.chan(), gort.chan(), gort.chan()

        def worker(i: int) -> None:
            _busy(0.003)
            ready.send(None)
            gate.recv()
            gort.gosched()
            done.send(i)

        gort.gomaxprocs(2)
        for i in range(n):
            gort.go(worker, i)
        for _ in range(n):
            ready.recv()
        gort.gomaxprocs(1)
        gate.close()
        first = sum(done.recv() for _ in range(n))
        gort.gomaxprocs(2)
        gate2 = gort.chan()
        for i in range(n):
            gort.go(lambda i=i: (gate2.recv(), done.send(i)))
        gort.gomaxprocs(1)
        gate2.close()
        second = sum(done.recv() for _ in range(n))
        return first, second

    assert gort.run(main, procs=procs) == (sum(range(n)), sum(range(n)))


def test_each_goroutine_has_its_own_stack(procs: int) -> None:
    # Deep recursion in many goroutines that interleave (each parks mid-way): the depth
    # available to one goroutine does not depend on how many others exist.
    depth, n = 600, 200

    def descend(k: int, out: gort.chan) -> int:
        if k == depth // 2:
            gort.gosched()
        return 0 if k == 0 else 1 + descend(k - 1, out)

    def main() -> set[int]:
        out = gort.chan()
        for _ in range(n):
            gort.go(lambda: out.send(descend(depth, out)))
        return {out.recv() for _ in range(n)}

    assert gort.run(main, procs=procs) == {depth}


# --- panics inside goroutines --------------------------------------------------------------


def test_panic_in_goroutine_ends_run_with_cause(
    procs: int, capfd: pytest.CaptureFixture[str]
) -> None:
    original = ValueError("boom")
    ids: list[int] = []

    def boom_worker() -> None:
        ids.append(gort.goid())
        raise original

    def main() -> None:
        gort.go(boom_worker)
        gort.chan().recv()  # never satisfied: the panic ends the program

    with pytest.raises(gort.Panic) as info:
        gort.run(main, procs=procs)
    assert info.value.__cause__ is original
    err = capfd.readouterr().err
    block = _panic_block(err, "panic: ValueError: boom")
    assert block[1] == ""
    assert block[2] == f"goroutine {ids[0]} [running]:"
    assert "boom_worker" in err
    assert "created by" in err
    assert "in goroutine 1" in err
    assert __file__ in err


def test_panic_in_main_reports_goroutine_one(procs: int, capfd: pytest.CaptureFixture[str]) -> None:
    original = RuntimeError("bad main")

    def main() -> None:
        raise original

    with pytest.raises(gort.Panic) as info:
        gort.run(main, procs=procs)
    assert info.value.__cause__ is original
    block = _panic_block(capfd.readouterr().err, "panic: RuntimeError: bad main")
    assert block[1:3] == ["", "goroutine 1 [running]:"]


def test_panic_while_main_keeps_working(procs: int) -> None:
    # main is runnable (never blocks); the panic still ends the program.
    original = KeyError("k")

    def thrower() -> None:
        raise original

    def main() -> None:
        gort.go(thrower)
        while True:
            gort.gosched()

    with pytest.raises(gort.Panic) as info:
        gort.run(main, procs=procs)
    assert info.value.__cause__ is original


def test_runtime_panic_in_goroutine_keeps_go_message(
    procs: int, capfd: pytest.CaptureFixture[str]
) -> None:
    def sender(ch: gort.chan) -> None:
        ch.send(1)

    def main() -> None:
        ch = gort.chan()
        ch.close()
        gort.go(sender, ch)
        gort.chan().recv()

    with pytest.raises(gort.Panic) as info:
        gort.run(main, procs=procs)
    assert str(info.value) == "send on closed channel"
    assert isinstance(info.value.__cause__, gort.Panic)
    assert str(info.value.__cause__) == "send on closed channel"
    block = _panic_block(capfd.readouterr().err, "panic: send on closed channel")
    assert block[1] == ""
    assert block[2].startswith("goroutine ")
    assert block[2].endswith(" [running]:")


def test_recovered_panic_does_not_end_program(procs: int) -> None:
    def worker(out: gort.chan) -> None:
        ch = gort.chan()
        ch.close()
        try:
            ch.close()
        except gort.Panic as exc:
            out.send(str(exc))

    def main() -> str:
        out = gort.chan()
        gort.go(worker, out)
        msg: str = out.recv()
        return msg

    assert gort.run(main, procs=procs) == "close of closed channel"


def test_created_by_names_the_creating_goroutine(
    procs: int, capfd: pytest.CaptureFixture[str]
) -> None:
    ids: dict[str, int] = {}

    def grandchild() -> None:
        ids["grandchild"] = gort.goid()
        raise ValueError("deep")

    def child() -> None:
        ids["child"] = gort.goid()
        gort.go(grandchild)
        gort.nilchan.recv()

    def main() -> None:
        gort.go(child)
        gort.nilchan.recv()

    with pytest.raises(gort.Panic):
        gort.run(main, procs=procs)
    err = capfd.readouterr().err
    block = _panic_block(err, "panic: ValueError: deep")
    assert block[2] == f"goroutine {ids['grandchild']} [running]:"
    created = [line for line in block if line.startswith("created by ")]
    assert len(created) == 1, err
    assert "child" in created[0]
    assert created[0].endswith(f" in goroutine {ids['child']}"), created[0]


def test_two_simultaneous_panics_report_one(procs: int, capfd: pytest.CaptureFixture[str]) -> None:
    def main() -> None:
        go_ahead = gort.chan()

        def boom(k: int) -> None:
            go_ahead.recv()
            raise ValueError(f"boom {k}")

        for k in range(4):
            gort.go(boom, k)
        go_ahead.close()
        gort.nilchan.recv()

    with pytest.raises(gort.Panic) as info:
        gort.run(main, procs=procs)
    assert isinstance(info.value.__cause__, ValueError)
    err = capfd.readouterr().err
    panic_lines = [line for line in err.splitlines() if line.startswith("panic: ")]
    assert panic_lines == [f"panic: {type(info.value.__cause__).__name__}: {info.value.__cause__}"]


def test_no_false_deadlock_while_a_goroutine_is_runnable(procs: int) -> None:
    # main is parked for a long while; the only other goroutine never parks, only yields.
    def busy(out: gort.chan) -> None:
        for _ in range(20_000):
            gort.gosched()
        out.send("finished")

    def main() -> str:
        out = gort.chan()
        gort.go(busy, out)
        value: str = out.recv()
        return value

    assert gort.run(main, procs=procs) == "finished"
