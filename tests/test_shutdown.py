"""``run`` ends in bounded time whatever the abandoned goroutines do (issue 6 A3, A4):
a goroutine that swallows GreenletExit is unwound once and then abandoned, an M stuck
in a direct blocking C call is left behind as a daemon thread, and the runtime is
always reset, even when a KeyboardInterrupt cuts the end short."""

from __future__ import annotations

import signal
import socket
import sys
import threading
import time

import pytest

import gort
from gort.runtime.runtime2 import sched


def test_a_goroutine_that_swallows_greenletexit_is_abandoned(
    procs: int, capfd: pytest.CaptureFixture[str]
) -> None:
    attempts: list[str] = []

    def worker(jobs: gort.chan) -> None:
        while True:
            try:
                if jobs.recv() is None:
                    return
            except:  # noqa: E722  (the pattern under test: keep the worker alive)
                attempts.append(sys.exc_info()[0].__name__)  # type: ignore[union-attr]

    def main() -> str:
        jobs = gort.chan()
        gort.go(worker, jobs)
        jobs.send(1)
        return "main done"

    start = time.monotonic()
    assert gort.run(main, procs=procs) == "main done"
    assert time.monotonic() - start < 5
    assert attempts == ["GreenletExit"]  # unwound once, then abandoned
    assert "swallowed GreenletExit at the end of the run and was abandoned" in (
        capfd.readouterr().err
    )
    assert not sched.running
    assert gort.run(lambda: "next run") == "next run"


def _stuck_on_m1(a: socket.socket) -> str:
    """main: a goroutine on M1 blocks in a direct recv (no gort.syscall), then main returns."""
    gort.gomaxprocs(2)
    started = gort.chan(1)

    def reader() -> None:
        started.send(threading.get_ident())
        a.recv(10)  # blocks its M: never returns during the run

    gort.go(reader)
    deadline = time.monotonic() + 5
    while len(started) == 0 and time.monotonic() < deadline:
        pass  # keep P0 busy so that M1 takes the reader
    assert started.recv() != threading.get_ident()
    return "main returned"


def test_an_m_stuck_in_a_blocking_call_does_not_hold_up_the_end(
    capfd: pytest.CaptureFixture[str],
) -> None:
    a, b = socket.socketpair()
    try:
        start = time.monotonic()
        assert gort.run(_stuck_on_m1, a) == "main returned"
        assert time.monotonic() - start < 5
        assert "did not stop within" in capfd.readouterr().err
        assert not sched.running
        assert gort.run(lambda: "next run") == "next run"
    finally:
        b.send(b"x")  # the stuck reader returns and its thread ends
        for t in threading.enumerate():
            if t.name.startswith("gort-M"):
                t.join(5)
        a.close()
        b.close()


def test_an_interrupt_during_a_stuck_end_still_resets_the_runtime() -> None:
    a, b = socket.socketpair()

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, interrupt)
    try:

        def main() -> str:
            result = _stuck_on_m1(a)
            signal.setitimer(signal.ITIMER_REAL, 0.3)  # fires while run waits for M1
            return result

        with pytest.raises(KeyboardInterrupt):
            gort.run(main)
        assert not sched.running
        assert gort.run(lambda: "next run") == "next run"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        b.send(b"x")
        for t in threading.enumerate():
            if t.name.startswith("gort-M"):
                t.join(5)
        a.close()
        b.close()
