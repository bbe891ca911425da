"""sysmon and preemption: a CPU-bound goroutine cannot starve others; async preemption only
at async safe points (user code), turned off by GODEBUG=asyncpreemptoff=1; synchronous
preemption at runtime calls; the blocking detector's warning.

Every spinning loop below gives up on its own after a few seconds, so a runtime that never
preempts fails the assertions instead of hanging the test run.
"""

from __future__ import annotations

import copy
import itertools
import re
import subprocess
import time
from pathlib import Path

import pytest

import gort
import gortproc

GIVE_UP = 5.0  # seconds a spinner runs at most when nobody stops it


def run_script(
    tmp_path: Path, source: str, env: dict[str, str] | None = None, name: str = "prog.py"
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """gortproc.run_script, and the script's path (to find line numbers in it)."""
    return gortproc.run_script(tmp_path, source, env=env, name=name), tmp_path / name


def line_of(script: Path, marker: str) -> int:
    """1-based number of the line of script containing marker."""
    for n, line in enumerate(script.read_text().splitlines(), 1):
        if marker in line:
            return n
    raise AssertionError(f"{marker!r} not in {script}")


# --- fairness ----------------------------------------------------------------------------


def test_cpu_bound_loop_does_not_starve_ticker(procs: int) -> None:
    # The test: on one P a goroutine spinning in pure Python must not keep a
    # ticker-driven goroutine (here main) from receiving its ticks.
    def main() -> list[float]:
        state = {"stop": False}
        give_up = time.monotonic() + GIVE_UP

        def spin() -> None:
            while not state["stop"] and time.monotonic() < give_up:
                pass

        gort.go(spin)
        gort.gosched()  # the spinner is now running (or has run)
        tk = gort.Ticker(0.01)
        got = [time.monotonic()]
        for _ in range(10):
            tk.c.recv()
            got.append(time.monotonic())
        tk.stop()
        state["stop"] = True
        return got

    got = gort.run(main, procs=procs)
    # Every tick arrived while the spinner still spun (starved, they would come only
    # once it gives up after GIVE_UP s); no gap near that. No tighter latency: a loaded
    # machine stretches time slices.
    assert got[-1] - got[0] < GIVE_UP * 0.8, got
    gaps = [b - a for a, b in itertools.pairwise(got)]
    assert max(gaps) < GIVE_UP / 5, gaps


def test_two_cpu_bound_goroutines_share_one_p(procs: int) -> None:
    def main() -> tuple[float, int, dict[str, int]]:
        start = time.monotonic()
        end = start + 0.5
        first_run: dict[str, float] = {}
        counts = {"a": 0, "b": 0}
        last = [""]
        switches = [0]
        done = gort.chan(2)

        def spinner(name: str) -> None:
            first_run[name] = time.monotonic()
            first_run[name + "_before_end"] = first_run[name] < end
            while time.monotonic() < end:
                counts[name] += 1
                if last[0] != name:
                    last[0] = name
                    switches[0] += 1
            done.send(name)

        def a() -> None:
            gort.go(spinner, "b")  # b becomes runnable while a spins
            spinner("a")

        gort.go(a)
        done.recv()
        done.recv()
        return bool(first_run["b_before_end"]), switches[0], counts

    b_started_in_time, switches, counts = gort.run(main, procs=procs)
    assert b_started_in_time  # b did not wait for a's 0.5 s to end
    assert counts["a"] > 0 and counts["b"] > 0
    if procs == 1:
        assert switches >= 3  # a, b, a: time-sliced back and forth (~50 times unloaded)


def _deepcopy_spin(duration: float, log: dict[str, float]) -> None:
    """Spin for duration seconds inside copy.deepcopy (a standard-library frame)."""

    class Slow:
        def __deepcopy__(self, memo: dict[int, object]) -> Slow:
            log["lib_start"] = time.monotonic()
            end = log["lib_start"] + duration
            while time.monotonic() < end:
                pass
            log["lib_end"] = time.monotonic()
            return self

    copy.deepcopy(Slow())


def test_no_async_preemption_inside_library_frames() -> None:
    # On one P: while the goroutine's stack has a standard-library frame (copy.py) the
    # goroutine is not at an async safe point and must not be preempted, even though its
    # own code runs on top; back in plain user code it is preempted at once.
    def main() -> dict[str, float]:
        log: dict[str, float] = {}
        done = gort.chan()

        def other() -> None:
            log["other_ran"] = time.monotonic()

        def hog() -> None:
            gort.go(other)
            _deepcopy_spin(0.3, log)
            give_up = time.monotonic() + GIVE_UP
            while "other_ran" not in log and time.monotonic() < give_up:
                pass
            log["hog_end"] = time.monotonic()
            done.close()

        gort.go(hog)
        done.recv()
        return log

    log = gort.run(main, procs=1)
    assert "other_ran" in log
    assert log["other_ran"] >= log["lib_end"]  # not while copy.deepcopy was on the stack
    assert log["other_ran"] - log["lib_end"] < 0.5  # but soon after


# --- GODEBUG=asyncpreemptoff=1 and synchronous preemption ------------------------------------

_FIRST_RUN = """
import time
import gort

def main():
    log = {}
    done = gort.chan()
    ran = gort.chan()

    def other():
        log["other"] = time.monotonic()
        ran.close()

    def hog():
        gort.go(other)
        log["start"] = time.monotonic()
        end = log["start"] + 0.4
        c = gort.chan(1)
        while time.monotonic() < end:
            BODY
        log["end"] = time.monotonic()
        done.close()

    gort.go(hog)
    done.recv()
    ran.recv()
    print(log["other"] - log["start"], log["other"] - log["end"])
"""


def _first_run(tmp_path: Path, body: str, godebug: str) -> tuple[float, float]:
    """Seconds from hog's start, and from its end, to the other goroutine's first run."""
    env = {"GOMAXPROCS": "1"}
    if godebug:
        env["GODEBUG"] = godebug
    proc, _ = run_script(tmp_path, _FIRST_RUN.replace("BODY", body), env=env)
    assert proc.returncode == 0, proc.stderr
    since_start, since_end = map(float, proc.stdout.split())
    return since_start, since_end


def test_async_preemption_of_plain_loop(tmp_path: Path) -> None:
    _, since_end = _first_run(tmp_path, "pass", "")
    assert since_end < 0  # the other goroutine ran while the hog still looped


def test_asyncpreemptoff_disables_async_preemption(tmp_path: Path) -> None:
    # A loop that makes no runtime call cannot be preempted at all then (Go <1.14).
    _, since_end = _first_run(tmp_path, "pass", "asyncpreemptoff=1")
    assert since_end >= 0


def test_sync_preemption_at_runtime_calls(tmp_path: Path) -> None:
    # Channel operations that never block still honour sysmon's preemption mark.
    body = "c.send(1); c.recv()"
    _, since_end = _first_run(tmp_path, body, "asyncpreemptoff=1")
    assert since_end < 0  # the other goroutine ran while the hog still looped


def test_sync_preemption_on_every_m(tmp_path: Path) -> None:
    # Two Ps, two goroutines looping on channel operations that never block, async
    # preemption off: whichever M they run on (the main thread or not), each must be
    # preempted at a runtime call so the goroutine it made runnable gets its P.
    proc, _ = run_script(
        tmp_path,
        """
        import time
        import gort

        def main():
            start = time.monotonic()
            end = start + 0.6
            ran = gort.chan(2)
            done = gort.chan(2)

            def other(name):
                ran.send((name, time.monotonic()))

            def hog(name):
                gort.go(other, name)
                c = gort.chan(1)
                while time.monotonic() < end:
                    c.send(1); c.recv()
                done.send(time.monotonic())

            gort.go(hog, "a")
            gort.go(hog, "b")
            firsts = sorted(t for _, t in (ran.recv(), ran.recv()))
            ends = sorted((done.recv(), done.recv()))
            print(firsts[1] - start, firsts[1] - ends[0])
        """,
        env={"GOMAXPROCS": "2", "GODEBUG": "asyncpreemptoff=1"},
    )
    assert proc.returncode == 0, proc.stderr
    _, before_hogs_end = map(float, proc.stdout.split())
    assert before_hogs_end < 0  # both others ran before either hog stopped looping


# --- blocking detector ---------------------------------------------------------------------

WARNING = re.compile(
    r"^runtime: goroutine (\d+) held P(\d+) for (\d+)ms without yielding "
    r"\(a blocking call outside gort\.syscall\?\)$",
    re.M,
)

_BLOCKER = """
import time
import gort

def hog(done, seconds):
    print(gort.goid(), flush=True)
    time.sleep(seconds)  # BLOCKING CALL
    done.send(None)

def main():
    done = gort.chan()
    gort.go(hog, done, SECONDS)
    done.recv()
"""


@pytest.mark.parametrize("procs_env", ["1", "2"])
def test_blocking_detector_message(tmp_path: Path, procs_env: str) -> None:
    proc, script = run_script(
        tmp_path,
        _BLOCKER.replace("SECONDS", "0.3"),
        env={"GODEBUG": "blockthreshold=50ms", "GOMAXPROCS": procs_env},
        name="blocker.py",
    )
    assert proc.returncode == 0, proc.stderr
    gid = int(proc.stdout.split()[0])
    warnings = WARNING.findall(proc.stderr)
    assert len(warnings) == 1, proc.stderr  # one warning, not one per sysmon round
    goid, p, ms = map(int, warnings[0])
    assert goid == gid
    assert 0 <= p < int(procs_env)
    assert 50 <= ms < 300 + 1000, proc.stderr
    lines = proc.stderr.splitlines()
    at = next(i for i, line in enumerate(lines) if WARNING.match(line))
    assert lines[at + 1] == f"goroutine {gid} [running]:", proc.stderr
    stack = lines[at + 2 :]
    lineno = line_of(script, "BLOCKING CALL")
    assert "blocker.hog(...)" in stack, proc.stderr
    frame = stack.index("blocker.hog(...)")
    assert re.fullmatch(rf"\t/.*blocker\.py:{lineno}", stack[frame + 1]), proc.stderr


def test_blocking_detector_default_threshold(tmp_path: Path) -> None:
    proc, _ = run_script(
        tmp_path, _BLOCKER.replace("SECONDS", "0.3"), env={"GOMAXPROCS": "1"}, name="blocker.py"
    )
    assert proc.returncode == 0, proc.stderr
    warnings = WARNING.findall(proc.stderr)
    assert len(warnings) == 1, proc.stderr
    assert int(warnings[0][2]) >= 100


def test_blocking_detector_quiet_below_threshold(tmp_path: Path) -> None:
    proc, _ = run_script(
        tmp_path, _BLOCKER.replace("SECONDS", "0.02"), env={"GOMAXPROCS": "1"}, name="blocker.py"
    )
    assert proc.returncode == 0, proc.stderr
    assert "runtime: goroutine" not in proc.stderr


def test_blocking_detector_warns_each_culprit(tmp_path: Path) -> None:
    proc, _ = run_script(
        tmp_path,
        """
        import time
        import gort

        def hog(done):
            time.sleep(0.2)
            done.send(gort.goid())

        def main():
            done = gort.chan()
            gort.go(hog, done)
            a = done.recv()
            gort.go(hog, done)
            b = done.recv()
            print(a, b)
        """,
        env={"GODEBUG": "blockthreshold=50ms", "GOMAXPROCS": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    a, b = map(int, proc.stdout.split())
    named = sorted(int(w[0]) for w in WARNING.findall(proc.stderr))
    assert named == sorted([a, b]), proc.stderr


def test_main_goroutine_is_preempted_too(tmp_path: Path) -> None:
    # main is called by the runtime's own frame; that frame holds no lock, so a
    # CPU-bound main is preempted like any goroutine and a sleeper keeps ticking.
    proc, _ = run_script(
        tmp_path,
        """
        import time
        import gort

        def ticker(count):
            while True:
                gort.sleep(0.01)
                count[0] += 1

        def main():
            count = [0]
            gort.go(ticker, count)
            gort.sleep(0.02)
            end = time.monotonic() + 0.8
            while time.monotonic() < end:
                pass
            print(count[0])
        """,
        # The blocking detector would blame main only if it held P0 for 300 ms of its
        # 800 (never preempted); its default 100 ms can pass on a loaded machine whose
        # main thread waits that long for the GIL.
        env={"GOMAXPROCS": "1", "GODEBUG": "blockthreshold=300ms"},
    )
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) >= 2, proc.stdout  # about 40 without load; 0 if never preempted
    assert "held P0" not in proc.stderr


def test_timer_woken_goroutine_runs_before_the_preempted_one(tmp_path: Path) -> None:
    # A preempted goroutine queues behind the goroutines that the due timers wake,
    # so a 10 ms sleeper gets a turn at every preemption, not every other one.
    proc, _ = run_script(
        tmp_path,
        """
        import time
        import gort
        from gort.runtime import proc

        preemptions = [0]  # yields of the spinner: the handler calls proc.goyield
        original = proc.goyield

        def counting(gp, pp):
            preemptions[0] += 1
            original(gp, pp)

        proc.goyield = counting

        def sleeper(count):
            while True:
                gort.sleep(0.01)
                count[0] += 1

        def spin(done):
            end = time.monotonic() + 0.5
            while time.monotonic() < end:
                pass
            done.send(None)

        def main():
            count, done = [0], gort.chan()
            gort.go(sleeper, count)
            gort.sleep(0.02)
            start = preemptions[0]
            gort.go(spin, done)
            done.recv()
            print(count[0], preemptions[0] - start)
        """,
        env={"GOMAXPROCS": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    wakeups, preempted = map(int, proc.stdout.split())
    # sysmon preempts at most once a time slice (10 ms), the sleeper's period: at
    # every yield the sleeper is due, and must run before the spinner goes on.
    assert preempted >= 2, proc.stdout  # about 50 without load
    assert wakeups >= preempted - 1, proc.stdout
