"""Goroutine dumps as Go prints them: gort.stack, SIGQUIT, the wait time of
long-blocked goroutines, and scheddetail's M and G fields."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import gort
from gort.runtime import schedtrace
from gort.runtime.runtime2 import G_WAITING, sched
from gort.runtime.traceback import stamp_waiting
from gortproc import gort_env


def _parked(reason: str) -> list[int]:
    return sorted(
        gp.goid
        for gp in list(sched.allgs.values())
        if gp.status == G_WAITING and gp.waitreason == reason
    )


def _until_parked(reason: str, n: int = 1) -> None:
    give_up = time.monotonic() + 10
    while len(_parked(reason)) < n:
        assert time.monotonic() < give_up, f"nobody parked in {reason!r}"
        gort.sleep(0.0005)


def test_stack_current_goroutine_first_then_the_others(procs: int) -> None:
    def main() -> tuple[str, str]:
        c = gort.chan()
        gort.go(c.recv)
        _until_parked("chan receive")
        text, mine = gort.stack(), gort.stack(all=False)
        c.send(None)
        return text, mine

    text, mine = gort.run(main, procs=procs)
    blocks = text.rstrip("\n").split("\n\n")
    assert blocks[0].splitlines()[0] == "goroutine 1 [running]:"
    assert (
        f"test_dumps.test_stack_current_goroutine_first_then_the_others.<locals>.main(...)\n\t{__file__}:"
        in blocks[0]
    )
    assert any(b.startswith("goroutine 2 [chan receive]:") for b in blocks[1:])
    assert "created by test_dumps" in text and "in goroutine 1" in text
    assert mine.count("goroutine ") == 1 and mine.startswith("goroutine 1 [running]:")


def test_stack_outside_a_goroutine() -> None:
    with pytest.raises(RuntimeError, match=r"gort\.stack called outside a goroutine"):
        gort.stack()


def test_wait_time_in_minutes_once_blocked_a_minute() -> None:
    def main() -> tuple[str, str, str]:
        c = gort.chan()

        def waiter() -> None:
            c.recv()
            c.recv()

        gort.go(waiter)
        _until_parked("chan receive")
        before = gort.stack()
        gp = sched.allgs[2]
        gp.waitsince = time.monotonic() - 185  # as if sysmon first saw it 3 min 5 s ago
        stamp_waiting(time.monotonic())  # a stamp stays: the first sighting counts
        stamped = gort.stack()
        c.send(1)  # it wakes, then parks again: the old stamp is gone
        _until_parked("chan receive")
        after = gp.waitsince, gort.stack()
        c.send(2)
        return before, stamped, after[1] if after[0] == 0.0 else "stamp kept: " + after[1]

    before, stamped, after = gort.run(main)
    assert "goroutine 2 [chan receive]:" in before
    assert "goroutine 2 [chan receive, 3 minutes]:" in stamped
    assert "goroutine 2 [chan receive]:" in after
    assert "goroutine 1 [running]:" in stamped  # the running one never shows a wait


def test_stamps_only_blocked_goroutines() -> None:
    def main() -> tuple[float, float]:
        c = gort.chan()
        gort.go(c.recv)
        _until_parked("chan receive")
        me, other = sched.allgs[1], sched.allgs[2]
        me.waitsince = other.waitsince = 0.0  # whatever sysmon's own rounds stamped
        stamp_waiting(123.0)
        result = other.waitsince, me.waitsince
        c.send(None)
        return result

    assert gort.run(main) == (123.0, 0.0)


def test_scheddetail_names_the_running_goroutine() -> None:
    def main() -> str:
        c = gort.chan()
        gort.go(c.recv)
        _until_parked("chan receive")
        text = schedtrace.detail()
        c.send(None)
        return text

    lines = gort.run(main).splitlines()
    assert "  M0: p=0 curg=1 " in "\n".join(lines) + " "
    assert any(line.startswith("  G1: status=2(running) m=0 ") for line in lines), lines
    assert any(line.startswith("  G2: status=4(chan receive) m=-1 ") for line in lines), lines


SIGQUIT_PROG = """
import sys
import gort

def sleeper():
    gort.sleep(60)

def announce():
    gort.gosched()  # behind the sleeper and the waiter: both are parked after this
    print("ready", flush=True)
    gort.nilchan.recv()

def main():
    c = gort.chan()
    gort.go(sleeper)
    gort.go(c.recv)
    gort.go(announce)
    c.recv()
"""


@pytest.mark.skipif(not hasattr(signal, "SIGQUIT"), reason="no SIGQUIT here")
@pytest.mark.parametrize("traceback", ["single", "none"])
def test_sigquit_dumps_every_goroutine_and_exits_2(tmp_path: Path, traceback: str) -> None:
    script = tmp_path / "prog.py"
    script.write_text(textwrap.dedent(SIGQUIT_PROG))
    proc = subprocess.Popen(
        [sys.executable, "-m", "gort", str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # blockthreshold: no blocking-detector warning on a loaded machine
        env=gort_env({"GOTRACEBACK": traceback, "GODEBUG": "blockthreshold=3600s"}),
        cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        os.kill(proc.pid, signal.SIGQUIT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 2
    assert err.startswith("SIGQUIT: quit\n"), err
    if traceback == "none":
        assert err == "SIGQUIT: quit\n", err
        return
    assert "goroutine 1 [chan receive]:" in err
    assert "goroutine 2 [sleep]:" in err and "prog.sleeper(...)" in err
    assert "goroutine 3 [chan receive]:" in err
    # The announcer may be caught between its print and its park.
    assert re.search(r"goroutine 4 \[(chan receive \(nil chan\)|running)\]:", err), err


def test_sigquit_handler_restored_after_run() -> None:
    before = signal.getsignal(signal.SIGQUIT)
    inside = gort.run(lambda: signal.getsignal(signal.SIGQUIT))
    assert inside is not before
    assert signal.getsignal(signal.SIGQUIT) == before
