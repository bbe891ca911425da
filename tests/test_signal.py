"""gort.signal (Go's os/signal) and what SIGINT does without it (issue 6)."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest

import gort
import gort.signal
from gort.runtime.runtime2 import sched
from gortproc import run_script


def test_notify_delivers_each_signal_to_its_channels(procs: int) -> None:
    def main() -> tuple[object, ...]:
        term, both = gort.chan(1), gort.chan(2)
        gort.signal.notify(term, signal.SIGTERM)
        gort.signal.notify(both, signal.SIGINT, signal.SIGTERM)
        signal.raise_signal(signal.SIGTERM)
        got_term = term.recv()
        signal.raise_signal(signal.SIGINT)  # notified: it does not end the program
        return got_term, both.recv(), both.recv()

    assert gort.run(main, procs=procs) == (signal.SIGTERM, signal.SIGTERM, signal.SIGINT)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # put back
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_full_channel_misses_the_signal_and_nothing_blocks(procs: int) -> None:
    def main() -> tuple[int, list[object]]:
        full, probe = gort.chan(1), gort.chan(10)
        gort.signal.notify(full, signal.SIGTERM)
        gort.signal.notify(probe, signal.SIGTERM)  # delivered after `full`, in notify order
        for _ in range(3):
            signal.raise_signal(signal.SIGTERM)
            probe.recv()
        return len(full), [full.recv()]

    assert gort.run(main, procs=procs) == (1, [signal.SIGTERM])


def test_stop_ends_the_relay(procs: int) -> None:
    def main() -> tuple[int, object]:
        stopped, probe = gort.chan(1), gort.chan(1)
        gort.signal.notify(stopped, signal.SIGTERM)
        gort.signal.notify(probe, signal.SIGTERM)
        gort.signal.stop(stopped)
        signal.raise_signal(signal.SIGTERM)
        return len(stopped), probe.recv()

    assert gort.run(main, procs=procs) == (0, signal.SIGTERM)


def test_notify_rejects_bad_arguments() -> None:
    def main() -> list[str]:
        errors = []
        for args in [(gort.chan(1),), ("not a channel", signal.SIGINT), (gort.chan(1), "INT")]:
            try:
                gort.signal.notify(*args)  # type: ignore[arg-type]
            except TypeError as e:
                errors.append(str(e).split(":")[0])
        return errors

    assert gort.run(main) == ["gort.signal.notify"] * 3


def test_sigint_ends_the_program_while_main_is_parked(procs: int) -> None:
    unwound: list[str] = []

    def main() -> None:
        gort.go(gort.sleep, 30)  # something could still happen: no deadlock
        gort.go(signal.raise_signal, signal.SIGINT)
        try:
            gort.chan().recv()
        finally:
            unwound.append("main's finally ran")

    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        gort.run(main, procs=procs)
    assert time.monotonic() - start < 5
    assert unwound == ["main's finally ran"]
    assert not sched.running
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert gort.run(lambda: "next run") == "next run"


def test_a_second_sigint_cuts_slow_finally_blocks_short() -> None:
    log: list[str] = []

    def slow(started: gort.chan) -> None:
        try:
            started.send(None)
            gort.chan().recv()
        finally:
            log.append("finally started")
            main_thread = threading.main_thread().ident or 0
            threading.Timer(0.2, signal.pthread_kill, (main_thread, signal.SIGINT)).start()
            time.sleep(20)  # a slow clean-up: the second Ctrl-C interrupts it
            log.append("finally finished")

    def main() -> None:
        started = gort.chan()
        gort.go(slow, started)
        started.recv()
        gort.go(gort.sleep, 30)
        signal.raise_signal(signal.SIGINT)
        gort.chan().recv()

    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        gort.run(main)
    assert time.monotonic() - start < 10
    assert log == ["finally started"]
    assert not sched.running


def test_cli_exits_130_on_sigint(tmp_path: Path) -> None:
    proc = run_script(
        tmp_path,
        """
        import signal
        import gort

        def main():
            gort.go(gort.sleep, 30)
            gort.go(signal.raise_signal, signal.SIGINT)
            gort.chan().recv()
        """,
    )
    assert proc.returncode == 130, proc.stderr
