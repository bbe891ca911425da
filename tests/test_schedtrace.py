"""GODEBUG=schedtrace=MS (and scheddetail=1): Go's SCHED lines on stderr."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from gortproc import run_script

SCHED = re.compile(
    r"SCHED (?P<ms>\d+)ms: gomaxprocs=(?P<gomaxprocs>\d+) idleprocs=(?P<idleprocs>\d+) "
    r"threads=(?P<threads>\d+) spinningthreads=(?P<spinning>\d+) "
    r"idlethreads=(?P<idlethreads>\d+) runqueue=(?P<runqueue>\d+) "
    r"\[(?P<local>\d+(?: \d+)*)\]"
)

IDLE_MAIN = """
import gort

def main():
    gort.sleep(0.5)
    print("done")
"""


@dataclass
class Sched:
    ms: int
    gomaxprocs: int
    idleprocs: int
    threads: int
    spinning: int
    idlethreads: int
    runqueue: int
    local: list[int]


def sched_lines(stderr: str) -> list[Sched]:
    """Parse every SCHED line; each must match Go's format exactly."""
    out = []
    for line in stderr.splitlines():
        if not line.startswith("SCHED"):
            continue
        m = SCHED.fullmatch(line)
        assert m, f"malformed schedtrace line: {line!r}"
        d = m.groupdict()
        local = [int(x) for x in d.pop("local").split(" ")]
        out.append(Sched(**{k: int(v) for k, v in d.items()}, local=local))
    return out


def check_consistent(lines: list[Sched], procs: int, period_ms: int) -> None:
    assert len(lines) >= 3, lines
    for s in lines:
        assert s.gomaxprocs == procs
        assert len(s.local) == procs
        assert 0 <= s.idleprocs <= procs
        assert s.threads >= 1
        assert s.spinning <= s.threads
        assert s.idlethreads <= s.threads
    for a, b in itertools.pairwise(lines):
        # one line per period: never two within much less than the period
        assert b.ms - a.ms >= period_ms * 0.8, (a.ms, b.ms)


@pytest.mark.parametrize("procs", [1, 2])
def test_schedtrace_lines_idle_program(tmp_path: Path, procs: int) -> None:
    proc = run_script(
        tmp_path, IDLE_MAIN, env={"GODEBUG": "schedtrace=50", "GOMAXPROCS": str(procs)}
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "done\n"  # the trace goes to stderr only
    lines = sched_lines(proc.stderr)
    check_consistent(lines, procs, 50)
    # while main sleeps, every P is idle and every run queue empty
    assert any(
        s.idleprocs == procs and s.runqueue == 0 and s.local == [0] * procs for s in lines
    ), lines


def test_schedtrace_busy_program_shows_run_queue(tmp_path: Path) -> None:
    proc = run_script(
        tmp_path,
        """
        import time
        import gort

        def spin(end, done):
            while time.monotonic() < end:
                pass
            done.send(None)

        def main():
            end = time.monotonic() + 0.5
            done = gort.chan(20)
            for _ in range(20):
                gort.go(spin, end, done)
            for _ in range(20):
                done.recv()
        """,
        env={"GODEBUG": "schedtrace=50", "GOMAXPROCS": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    lines = sched_lines(proc.stderr)
    check_consistent(lines, 1, 50)
    assert any(s.idleprocs == 0 for s in lines), lines
    assert any(s.runqueue + sum(s.local) > 0 for s in lines), lines


def test_schedtrace_counts_syscall_threads(tmp_path: Path) -> None:
    proc = run_script(
        tmp_path,
        """
        import time
        import gort

        def main():
            for _ in range(5):
                gort.go(gort.syscall, time.sleep, 0.5)
            gort.sleep(0.4)
        """,
        env={"GODEBUG": "schedtrace=50", "GOMAXPROCS": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    lines = sched_lines(proc.stderr)
    check_consistent(lines, 1, 50)
    # five Ms blocked in calls, plus the one that runs goroutines
    assert max(s.threads for s in lines) >= 6, lines


def test_schedtrace_cli_flag(tmp_path: Path) -> None:
    proc = run_script(tmp_path, IDLE_MAIN, env={"GOMAXPROCS": "2"}, cli=("--schedtrace", "50"))
    assert proc.returncode == 0, proc.stderr
    check_consistent(sched_lines(proc.stderr), 2, 50)


def test_schedtrace_period_is_honoured(tmp_path: Path) -> None:
    proc = run_script(tmp_path, IDLE_MAIN, env={"GODEBUG": "schedtrace=200", "GOMAXPROCS": "1"})
    assert proc.returncode == 0, proc.stderr
    lines = sched_lines(proc.stderr)
    assert 1 <= len(lines) <= 4, lines  # 0.5 s at 200 ms
    for a, b in itertools.pairwise(lines):
        assert b.ms - a.ms >= 160


def test_schedtrace_first_line_at_start(tmp_path: Path) -> None:
    # Go's sysmon prints the first line on its first round ("SCHED 0ms: ..."), so even a
    # program shorter than the period gets one.
    proc = run_script(tmp_path, IDLE_MAIN, env={"GODEBUG": "schedtrace=1000", "GOMAXPROCS": "1"})
    assert proc.returncode == 0, proc.stderr
    lines = sched_lines(proc.stderr)
    assert lines, proc.stderr
    assert lines[0].ms < 100, lines[0]


def test_no_schedtrace_by_default(tmp_path: Path) -> None:
    proc = run_script(tmp_path, IDLE_MAIN)
    assert proc.returncode == 0, proc.stderr
    assert "SCHED" not in proc.stderr


# --- scheddetail=1 ---------------------------------------------------------------------------

DETAIL_SCHED = re.compile(
    r"SCHED \d+ms: gomaxprocs=(\d+) idleprocs=(\d+) threads=\d+ spinningthreads=\d+ "
    r"(?:needspinning=\d+ )?idlethreads=\d+ runqueue=\d+\b.*"
)
NIL_OR_ID = r"(?:-?\d+|nil)"
DETAIL_P = re.compile(
    rf"  P(\d+): status=\d+ schedtick=\d+ syscalltick=\d+ m={NIL_OR_ID} runqsize=\d+\b.*"
)
DETAIL_M = re.compile(rf"  M(\d+): p={NIL_OR_ID} curg={NIL_OR_ID}\b.*")
DETAIL_G = re.compile(rf"  G(\d+): status=(\d+)\(([^)]*)\) m={NIL_OR_ID} lockedm={NIL_OR_ID}")
DETAIL_HEAP = re.compile(
    r"  heap: heap_sys=\d+ heap_inuse=\d+ heap_idle=\d+ heap_released=\d+ heap_objects=\d+ "
    r"mallocs=\d+ frees=\d+ finalizer_frees=\d+"
)


@pytest.mark.parametrize("procs", [1, 2])
def test_scheddetail_blocks(tmp_path: Path, procs: int) -> None:
    proc = run_script(
        tmp_path,
        IDLE_MAIN,
        env={"GODEBUG": "schedtrace=100,scheddetail=1", "GOMAXPROCS": str(procs)},
    )
    assert proc.returncode == 0, proc.stderr
    blocks: list[list[str]] = []
    for line in proc.stderr.splitlines():
        if line.startswith("SCHED"):
            blocks.append([line])
        elif line.startswith("  ") and blocks:
            blocks[-1].append(line)
    assert len(blocks) >= 2, proc.stderr
    main_sleeping = False
    for block in blocks:
        head = DETAIL_SCHED.fullmatch(block[0])
        assert head, block[0]
        assert int(head.group(1)) == procs
        ps = [int(m.group(1)) for line in block if (m := DETAIL_P.fullmatch(line))]
        # an idle P is in _Pidle (status=0): idleprocs counts exactly those
        idle = sum(1 for line in block if DETAIL_P.fullmatch(line) and " status=0 " in line)
        assert idle == int(head.group(2)), block
        ms = [line for line in block if DETAIL_M.fullmatch(line)]
        gs = [m for line in block if (m := DETAIL_G.fullmatch(line))]
        assert ps == list(range(procs)), block
        assert ms, block
        assert DETAIL_HEAP.fullmatch(block[1]), block  # gort.alloc's heap figures
        assert len(ps) + len(ms) + len(gs) == len(block) - 2, block  # nothing else
        main_sleeping |= any(g.group(1) == "1" and g.group(2, 3) == ("4", "sleep") for g in gs)
    assert main_sleeping, proc.stderr  # G1 waiting (_Gwaiting = 4) in sleep
