"""The ways a goroutine's end can go wrong (issue 6: B2, B3, B6, long tracebacks):
a panic racing main's return, exceptions that cannot be printed, user code raising
greenlet's GreenletExit, and runaway recursion."""

from __future__ import annotations

import re
import threading
import time

import greenlet
import pytest

import gort
from gort.runtime.runtime2 import sched


class _SlowStr(Exception):
    """An exception whose message takes a while to build, so that main returns while
    the panic is being reported."""

    formatting = threading.Event()

    def __str__(self) -> str:
        _SlowStr.formatting.set()
        time.sleep(0.3)  # releases the GIL: main returns meanwhile
        return "slow boom"


def test_a_panic_being_reported_wins_over_main_returning(capfd: pytest.CaptureFixture[str]) -> None:
    # Go's runtime.main parks while panicking != 0: the program ends with the panic.
    _SlowStr.formatting.clear()

    def bad() -> None:
        raise _SlowStr

    def main() -> int:
        gort.go(bad)
        # Hold M0 outside the runtime, so M1 takes `bad`, until its report has begun.
        assert _SlowStr.formatting.wait(10)
        return 42

    with pytest.raises(gort.Panic, match="slow boom"):
        gort.run(main, procs=2)
    assert "panic: _SlowStr: slow boom" in capfd.readouterr().err


class _BadStr(Exception):
    def __str__(self) -> str:
        raise RuntimeError("__str__ failed")


def test_an_exception_whose_str_fails_still_ends_the_program(
    procs: int, capfd: pytest.CaptureFixture[str]
) -> None:
    threads_before = set(threading.enumerate())

    def main() -> str:
        gort.go(lambda: (_ for _ in ()).throw(_BadStr()))
        gort.chan().recv()  # only the panic can end this run
        return "unreachable"

    with pytest.raises(gort.Panic) as info:
        gort.run(main, procs=procs)
    assert str(info.value) == "_BadStr: <exception str() failed>"
    err = capfd.readouterr().err
    assert "panic: _BadStr: <exception str() failed>" in err
    assert "goroutine 2 [running]:" in err
    assert set(threading.enumerate()) <= threads_before  # no M died or stayed behind
    assert not sched.running

    # The next panic is reported as usual.
    def again() -> None:
        raise ValueError("second")

    with pytest.raises(gort.Panic, match="ValueError: second"):
        gort.run(again, procs=procs)


def test_greenletexit_raised_by_user_code_ends_only_its_goroutine(procs: int) -> None:
    def main() -> tuple[bool, int, int]:
        done = gort.chan()
        finally_ran = []

        def w() -> None:
            try:
                raise greenlet.GreenletExit
            finally:
                finally_ran.append(True)
                done.send(None)

        gort.go(w)
        done.recv()
        for _ in range(10):
            gort.gosched()  # w's goroutine finishes ending
        alive = gort.num_goroutine()
        out = gort.chan()
        gort.go(out.send, 7)  # the runtime goes on as usual
        return finally_ran == [True], alive, out.recv()

    assert gort.run(main, procs=procs) == (True, 1, 7)


def test_greenletexit_in_main_ends_the_program_quietly(procs: int) -> None:
    def main() -> None:
        gort.go(gort.chan().recv)  # an abandoned goroutine: no deadlock either
        raise greenlet.GreenletExit

    assert gort.run(main, procs=procs) is None


def test_a_goroutine_ended_by_greenletexit_is_not_in_dumps(
    procs: int, capfd: pytest.CaptureFixture[str]
) -> None:
    ended: list[int] = []

    def w(done: gort.chan) -> None:
        ended.append(gort.goid())
        done.send(None)
        raise greenlet.GreenletExit

    def main() -> None:
        done = gort.chan()
        gort.go(w, done)
        done.recv()
        for _ in range(10):
            gort.gosched()
        gort.chan().recv()

    with pytest.raises(gort.Deadlock):
        gort.run(main, procs=procs)
    heads = re.findall(r"^goroutine (\d+) \[", capfd.readouterr().err, flags=re.MULTILINE)
    assert heads == ["1"], (heads, ended)


def test_runaway_recursion_prints_at_most_a_hundred_frames(
    capfd: pytest.CaptureFixture[str],
) -> None:
    # Go prints the 50 innermost and the 50 outermost frames and counts the rest.
    def down(n: int) -> int:
        return down(n + 1) + 1

    def main() -> None:
        gort.go(down, 0)
        gort.chan().recv()

    with pytest.raises(gort.Panic, match="RecursionError"):
        gort.run(main)
    err = capfd.readouterr().err
    elided = re.search(r"^\.\.\.(\d+) frames elided\.\.\.$", err, flags=re.MULTILINE)
    assert elided is not None and int(elided.group(1)) > 100
    assert len(re.findall(r"\.down\(\.\.\.\)$", err, flags=re.MULTILINE)) == 100
