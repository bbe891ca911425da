"""Go's thread limit (sched.maxmcount) for gort.syscall's helper Ms, and
helper threads that outlive their run."""

from __future__ import annotations

import threading
import time

import pytest

import gort
from gort.runtime import syscall as syscall_mod


def test_thread_exhaustion_is_fatal(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    # The limit counts every thread the runtime runs, M0 included: 4 leaves 2 helpers.
    monkeypatch.setattr(syscall_mod, "MAX_MCOUNT", 4)
    release = threading.Event()

    def main() -> None:
        done = gort.chan()
        for _ in range(3):
            gort.go(lambda: done.send(gort.syscall(release.wait, 5)))
        done.recv()

    try:
        with pytest.raises(gort.Fatal) as info:
            gort.run(main)
    finally:
        release.set()
    assert str(info.value) == "thread exhaustion"
    err = capfd.readouterr().err
    assert "runtime: program exceeds 4-thread limit" in err
    assert "fatal error: thread exhaustion" in err


def test_helpers_are_reused_not_multiplied() -> None:
    def main() -> int:
        for _ in range(50):
            gort.syscall(time.sleep, 0)
        from gort.runtime.runtime2 import sched

        n: int = sched.syscalls.nthreads
        return n

    assert gort.run(main) == 1


def test_helper_left_in_a_call_does_not_touch_the_next_run() -> None:
    # main returns while a goroutine waits in a syscall; that call ends during the
    # next run. Its helper must not count it as one of the next run's calls: if it
    # did, the next run would see no call in flight while its main waits on one,
    # and report a deadlock.
    release = threading.Event()

    def first() -> None:
        gort.go(gort.syscall, release.wait, 5)
        gort.gosched()

    gort.run(first)

    def second() -> str:
        release.set()  # the first run's call returns now, during this one
        gort.syscall(time.sleep, 0.3)
        return "ok"

    assert gort.run(second) == "ok"
