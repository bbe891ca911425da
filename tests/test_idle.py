"""An idle runtime burns no CPU: the idle M sleeps until the next timer, sysmon backs off.

CPU is the whole process's (time.process_time(): every thread, sysmon and helper Ms
included), measured while main blocks for about a second; the budget is 5% of it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import gort

SRC = Path(__file__).resolve().parents[1] / "src"
GO_ENV = ("GOMAXPROCS", "GODEBUG", "GOTRACEBACK", "GORT_SCHEDSEED")
BUDGET = 0.05  # fraction of the wall time the process may spend on CPU while idle


def measure(block: Callable[[], object]) -> tuple[float, float]:
    """(cpu seconds, wall seconds) spent in block()."""
    c0, w0 = time.process_time(), time.monotonic()
    block()
    return time.process_time() - c0, time.monotonic() - w0


def test_idle_sleep_in_main_burns_no_cpu(procs: int) -> None:
    def main() -> tuple[float, float]:
        gort.sleep(0.05)  # let start-up work (sysmon's first rounds, ...) settle
        return measure(lambda: gort.sleep(1.0))

    cpu, wall = gort.run(main, procs=procs)
    assert wall >= 1.0
    assert cpu < BUDGET * wall, (cpu, wall)


def test_idle_with_parked_goroutines(procs: int) -> None:
    # Goroutines blocked on channels and on the nil channel cost nothing while they wait.
    def main() -> tuple[float, float]:
        ch = gort.chan()
        for _ in range(100):
            gort.go(ch.recv)
            gort.go(gort.nilchan.recv)
        gort.sleep(0.05)
        cpu_wall = measure(lambda: gort.sleep(1.0))
        ch.close()
        return cpu_wall

    cpu, wall = gort.run(main, procs=procs)
    assert cpu < BUDGET * wall, (cpu, wall)


def test_idle_waiting_on_a_far_timer(procs: int) -> None:
    # main waits on a channel filled by another goroutine after its own 1 s sleep.
    def main() -> tuple[float, float]:
        ch = gort.chan()

        def later() -> None:
            gort.sleep(1.0)
            ch.send(None)

        gort.sleep(0.05)
        gort.go(later)
        return measure(ch.recv)

    cpu, wall = gort.run(main, procs=procs)
    assert wall >= 1.0
    assert cpu < BUDGET * wall, (cpu, wall)


def test_idle_during_syscall(procs: int) -> None:
    def main() -> tuple[float, float]:
        gort.sleep(0.05)
        return measure(lambda: gort.syscall(time.sleep, 1.0))

    cpu, wall = gort.run(main, procs=procs)
    assert cpu < BUDGET * wall, (cpu, wall)


def test_idle_m_wakes_on_time(procs: int) -> None:
    # Sleeping "exactly until the next timer": after an idle stretch the wake-up comes no
    # earlier than the deadline and without a polling delay of its own.
    def main() -> list[float]:
        gort.sleep(0.05)
        late = []
        for d in (0.3, 0.1, 0.2):
            t0 = time.monotonic()
            gort.sleep(d)
            late.append(time.monotonic() - t0 - d)
        return late

    late = gort.run(main, procs=procs)
    assert min(late) >= 0
    assert max(late) < 0.2, late


def test_idle_ticker_costs_little(procs: int) -> None:
    # A 50 ms ticker wakes the runtime 20 times a second; still nearly idle.
    def main() -> tuple[float, float]:
        tk = gort.Ticker(0.05)

        def ticks() -> None:
            for _ in range(20):
                tk.c.recv()

        gort.sleep(0.05)
        out = measure(ticks)
        tk.stop()
        return out

    cpu, wall = gort.run(main, procs=procs)
    assert cpu < BUDGET * wall, (cpu, wall)


@pytest.mark.parametrize("procs_env", ["1", "2"])
def test_idle_fresh_process(tmp_path: Path, procs_env: str) -> None:
    # The same measurement in a fresh process run by the CLI, nothing of pytest around it.
    script = tmp_path / "idle.py"
    script.write_text(
        textwrap.dedent(
            """
            import time
            import gort

            def main():
                gort.sleep(0.05)
                c0, w0 = time.process_time(), time.monotonic()
                gort.sleep(1.0)
                print(time.process_time() - c0, time.monotonic() - w0)
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if k not in GO_ENV}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH", "")) if p)
    env["GOMAXPROCS"] = procs_env
    proc = subprocess.run(
        [sys.executable, "-m", "gort", str(script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    cpu, wall = map(float, proc.stdout.split())
    assert cpu < BUDGET * wall, (cpu, wall)
