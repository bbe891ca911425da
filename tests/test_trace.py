"""The execution tracer: both formats are well formed and say what happened.

* Go's format: every trace a test makes is checked here against the state
  machine Go's parser enforces (internal/trace postProcessTrace: a G starts
  only when runnable, blocks only while running on that P, is unblocked
  only while waiting, a P stops only with no G...), and by the real Go
  toolchain (``go tool trace -d`` parses it; ``-pprof=sched`` and
  ``-pprof=sync`` build profiles with samples) in test_trace_go.py.
* JSON: the trace-event format's rules (phases, durations, metadata), flows
  that pair up, a track per P and per goroutine.
"""

from __future__ import annotations

import gc
import io
import json
import subprocess
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import gort
import gort.trace
from gort import tracetool
from gort.runtime import trace as tr
from gort.runtime.runtime2 import G_WAITING, sched
from gortproc import gort_env, run_script

# ---------------------------------------------------------------------------
# Helpers shared with test_trace_go.py.


def traced(main: Callable[[], Any], procs: int = 1, fmt: str = "go") -> bytes:
    """Run main under gort.run with the tracer on; the trace's bytes."""
    buf = io.BytesIO()

    def wrapper() -> Any:
        gort.trace.start(buf, format=fmt)
        try:
            return main()
        finally:
            gort.trace.stop()

    gort.run(wrapper, procs=procs)
    return buf.getvalue()


def check_go_structure(data: bytes) -> tracetool.Trace:
    """Go's parser's consistency rules (postProcessTrace), as its own checks.

    Returns the parsed trace; raises AssertionError naming the bad event.
    """
    t = tracetool.parse(data)
    runnable, running, waiting, dead = 1, 2, 3, 4
    gs: dict[int, int] = {}
    pg: dict[int, int] = {}  # P -> running G
    prun: dict[int, bool] = {}
    in_gc = False
    last_ts = -1
    tasks: set[int] = set()
    regions: dict[int, list[tuple[int, str]]] = {}
    for ev in t.events:
        name = tr.EV_NAMES.get(ev.typ, str(ev.typ))
        where = f"{name} p={ev.p} g={ev.g} args={ev.args} ts={ev.ts}"
        assert ev.ts >= last_ts, f"timestamps out of order at {where}"
        last_ts = ev.ts
        typ = ev.typ

        def is_running(g: int = ev.g, p: int = ev.p, where: str = where) -> None:
            assert g != 0, f"g0 did {where}"
            assert gs.get(g) == running, f"g {g} not running at {where}"
            assert pg.get(p, 0) == g, f"p {p} not running g {g} at {where}"

        if typ == tr.EV_PROC_START:
            assert not prun.get(ev.p), where
            prun[ev.p] = True
        elif typ == tr.EV_PROC_STOP:
            assert prun.get(ev.p), where
            assert pg.get(ev.p, 0) == 0, where
            prun[ev.p] = False
        elif typ == tr.EV_GC_START:
            assert not in_gc, where
            in_gc = True
        elif typ == tr.EV_GC_DONE:
            assert in_gc, where
            in_gc = False
        elif typ == tr.EV_GO_CREATE:
            assert ev.args[0] not in gs, f"g already exists: {where}"
            if ev.g:
                is_running()
            gs[ev.args[0]] = runnable
        elif typ in (tr.EV_GO_WAITING, tr.EV_GO_IN_SYSCALL):
            assert gs.get(ev.args[0]) == runnable, where
            gs[ev.args[0]] = waiting
        elif typ == tr.EV_GO_START:
            assert gs.get(ev.g) == runnable, f"g not runnable before start: {where}"
            assert pg.get(ev.p, 0) == 0, f"p already runs g {pg.get(ev.p)}: {where}"
            gs[ev.g] = running
            pg[ev.p] = ev.g
        elif typ in (tr.EV_GO_END, tr.EV_GO_STOP):
            is_running()
            gs[ev.g] = dead
            pg[ev.p] = 0
            regions.pop(ev.g, None)
        elif typ in (tr.EV_GO_SCHED, tr.EV_GO_PREEMPT):
            is_running()
            gs[ev.g] = runnable
            pg[ev.p] = 0
        elif typ in tr.BLOCK_EVENTS or typ == tr.EV_GO_SYSBLOCK:
            is_running()
            gs[ev.g] = waiting
            pg[ev.p] = 0
        elif typ == tr.EV_GO_SYSCALL:
            is_running()
        elif typ == tr.EV_GO_UNBLOCK:
            assert ev.g == 0 or gs.get(ev.g) == running, where
            assert gs.get(ev.args[0]) == waiting, f"g not waiting before unblock: {where}"
            gs[ev.args[0]] = runnable
        elif typ == tr.EV_GO_SYSEXIT:
            assert gs.get(ev.args[0]) == waiting, where
            gs[ev.args[0]] = runnable
        elif typ == tr.EV_USER_TASK_CREATE:
            assert ev.args[0] not in tasks, where
            tasks.add(ev.args[0])
        elif typ == tr.EV_USER_REGION:
            stack = regions.setdefault(ev.g, [])
            name_id = ev.args[2]
            if ev.args[1] == 0:
                stack.append((ev.args[0], t.strings[name_id]))
            else:
                assert stack and stack[-1] == (ev.args[0], t.strings[name_id]), where
                stack.pop()
    return t


def types(t: tracetool.Trace) -> Counter[int]:
    return Counter(ev.typ for ev in t.events)


def wait_parked(reason: str) -> None:
    """Yield until some goroutine is parked with this wait reason (bounded)."""
    give_up = time.monotonic() + 10
    while not any(
        gp.status == G_WAITING and gp.waitreason == reason for gp in list(sched.allgs.values())
    ):
        assert time.monotonic() < give_up, f"nobody parked in {reason!r}"
        gort.sleep(0.0005)


# ---------------------------------------------------------------------------
# What the events say.


def _everything() -> None:
    """One of each: hand-offs, a buffered channel, select, sleep, syscall,
    gosched, after_func, a goroutine blocked forever, goroutines ending."""
    c = gort.chan()
    b = gort.chan(2)
    done = gort.chan()

    def ponger() -> None:
        for v in c:
            c.send(v + 1)

    def selecter() -> None:
        i, _ = gort.select(b.recv, done.recv)
        assert i == 0

    def forever() -> None:
        gort.nilchan.recv()

    gort.go(ponger)
    gort.go(selecter)
    gort.go(forever)
    for i in range(3):
        c.send(i)
        assert c.recv() == i + 1
    c.close()
    wait_parked("select")
    b.send(1)
    gort.sleep(0.002)
    assert gort.syscall(time.sleep, 0.002) is None
    gort.gosched()
    fired = gort.chan(1)
    gort.after_func(0.001, lambda: fired.send(True))
    assert fired.recv()


def test_go_format_events_and_states(procs: int) -> None:
    t = check_go_structure(traced(_everything, procs))
    seen = types(t)
    for ev in (
        tr.EV_GO_CREATE,
        tr.EV_GO_START,
        tr.EV_GO_END,
        tr.EV_GO_STOP,
        tr.EV_GO_SCHED,
        tr.EV_GO_SLEEP,
        tr.EV_GO_UNBLOCK,
        tr.EV_GO_BLOCK_SEND,
        tr.EV_GO_BLOCK_RECV,
        tr.EV_GO_BLOCK_SELECT,
        tr.EV_GO_SYSCALL,
        tr.EV_GO_SYSBLOCK,
        tr.EV_GO_SYSEXIT,
        tr.EV_GOMAXPROCS,
    ):
        assert seen[ev], f"no {tr.EV_NAMES[ev]} in {dict(seen)}"
    # Goroutine 1 plus ponger, selecter, forever, the after_func goroutine.
    assert seen[tr.EV_GO_CREATE] == 5


def test_unblock_names_the_unblocker(procs: int) -> None:
    def main() -> None:
        c = gort.chan()
        done = gort.chan()

        def receiver() -> None:
            done.send(c.recv())

        gort.go(receiver)
        wait_parked("chan receive")
        c.send(1)  # main unblocks the receiver ...
        assert done.recv() == 1  # ... which unblocks main

    t = check_go_structure(traced(main, procs))
    receiver = next(ev.args[0] for ev in t.events if ev.typ == tr.EV_GO_CREATE and ev.g == 1)
    unblocks = [(ev.g, ev.args[0]) for ev in t.events if ev.typ == tr.EV_GO_UNBLOCK]
    assert (1, receiver) in unblocks
    assert (receiver, 1) in unblocks


def test_creation_stacks_and_start_functions() -> None:
    def worker() -> None:
        pass

    def main() -> None:
        gort.go(worker)  # the creation site

    t = check_go_structure(traced(main))
    create = next(ev for ev in t.events if ev.typ == tr.EV_GO_CREATE and ev.g == 1)
    fn = t.stacks[create.args[1]]
    assert fn[0][0].endswith("worker") and fn[0][1] == __file__
    site = t.stacks[create.stk]
    assert site[0][0].endswith("main") and site[0][1] == __file__


def test_user_tasks_regions_logs() -> None:
    def main() -> None:
        ctx, task = gort.trace.new_task(None, "make coffee")
        with gort.trace.region(ctx, "grind"), gort.trace.region(ctx, "weigh"):
            gort.trace.log(ctx, "grams", "18")
        _, sub = gort.trace.new_task(ctx, "steam milk")
        sub.end()
        task.end()

    t = check_go_structure(traced(main))
    names = {t.strings[ev.args[2]] for ev in t.events if ev.typ == tr.EV_USER_TASK_CREATE}
    assert names == {"make coffee", "steam milk"}
    parents = {ev.args[0]: ev.args[1] for ev in t.events if ev.typ == tr.EV_USER_TASK_CREATE}
    assert sorted(parents.values()) == [0, 1]  # steam milk is a subtask of make coffee
    regions = [
        (ev.args[1], t.strings[ev.args[2]]) for ev in t.events if ev.typ == tr.EV_USER_REGION
    ]
    assert regions == [(0, "grind"), (0, "weigh"), (1, "weigh"), (1, "grind")]
    assert types(t)[tr.EV_USER_LOG] == 1
    assert types(t)[tr.EV_USER_TASK_END] == 2


def test_annotations_are_free_when_off() -> None:
    def main() -> bool:
        ctx, task = gort.trace.new_task(None, "t")
        with gort.trace.region(ctx, "r"):
            gort.trace.log(ctx, "k", "v")
        task.end()
        return gort.trace.is_enabled()

    assert gort.run(main) is False


def test_gc_cycles_are_gc_events() -> None:
    def main() -> None:
        gc.collect()

    t = check_go_structure(traced(main))
    seen = types(t)
    assert seen[tr.EV_GC_START] >= 1 and seen[tr.EV_GC_DONE] == seen[tr.EV_GC_START]
    assert seen[tr.EV_HEAP_ALLOC] >= 1


def test_both_ps_run_goroutines_at_gomaxprocs_2() -> None:
    def main() -> None:
        wg = gort.chan(16)

        def spin() -> None:
            end = time.monotonic() + 0.02
            while time.monotonic() < end:
                pass
            wg.send(None)

        for _ in range(8):
            gort.go(spin)
        for _ in range(8):
            wg.recv()

    t = check_go_structure(traced(main, procs=2))
    ps = {ev.p for ev in t.events if ev.typ == tr.EV_GO_START}
    assert {0, 1} <= ps, ps


def test_preemption_is_recorded() -> None:
    def main() -> None:
        ran = gort.chan(1)

        def other() -> None:
            ran.send(True)

        gort.go(other)
        give_up = time.monotonic() + 5
        while ran.cap and len(ran) == 0 and time.monotonic() < give_up:
            pass  # a plain loop: sysmon preempts it after 10 ms
        assert ran.recv()

    t = check_go_structure(traced(main))
    assert types(t)[tr.EV_GO_PREEMPT] >= 1


def test_syscall_exit_follows_block() -> None:
    def main() -> None:
        for _ in range(3):
            gort.syscall(time.sleep, 0.001)

    t = check_go_structure(traced(main, procs=1))
    seq = [ev.typ for ev in t.events if ev.g == 1 or ev.typ == tr.EV_GO_SYSEXIT]
    calls = [i for i, typ in enumerate(seq) if typ == tr.EV_GO_SYSCALL]
    assert len(calls) == 3
    for i in calls:
        assert seq[i + 1 : i + 3] == [tr.EV_GO_SYSBLOCK, tr.EV_GO_SYSEXIT], seq[i:]


def test_tracing_started_mid_program_announces_goroutines(procs: int) -> None:
    def main() -> None:
        c = gort.chan()
        ready = gort.chan()

        def waiter() -> None:
            ready.send(None)
            c.recv()

        gort.go(waiter)
        ready.recv()
        buf = io.BytesIO()
        gort.trace.start(buf)
        c.send(1)
        gort.trace.stop()
        t = check_go_structure(buf.getvalue())
        assert types(t)[tr.EV_GO_WAITING] == 1

    gort.run(main, procs=procs)


def test_hot_functions_run_without_hook_sites_while_off() -> None:
    """Not tracing costs the switch path nothing: schedule, ready, a
    channel's send and recv... run a twin of their code without the
    ``sched.tracing`` tests while tracing is off, and their own code while
    it is on."""
    hot = {fn.__qualname__: fn for fn, _, _ in tr._hot}
    assert {"schedule", "ready", "goexit0", "newproc", "Chan.send", "Chan.recv"} <= set(hot)

    def hooked() -> list[bool]:
        return ["tracing" in fn.__code__.co_names for fn in hot.values()]

    def main() -> list[list[bool]]:
        off = hooked()
        gort.trace.start(io.BytesIO())
        on = hooked()
        gort.trace.stop()
        return [off, on, hooked()]

    off, on, after = gort.run(main)
    assert not any(off) and all(on) and not any(after)


def test_hot_function_twins_keep_their_line_numbers() -> None:
    def main() -> traceback.StackSummary:
        c = gort.chan()
        c.close()
        try:
            c.send(1)
        except gort.Panic as e:
            return traceback.extract_tb(e.__traceback__)
        raise AssertionError("no panic")

    last = gort.run(main)[-1]
    assert (last.name, last.line) == ("send", 'raise Panic("send on closed channel")')


def test_goroutines_parked_before_tracing_starts(procs: int) -> None:
    """A goroutine parked in the switch path's untraced twin resumes in it
    after tracing started: the trace still starts it before its events."""

    def main() -> bytes:
        ping, pong = gort.chan(), gort.chan()

        def echo() -> None:
            for v in ping:
                pong.send(v)

        gort.go(echo)
        ping.send(0)
        pong.recv()  # echo is parked (runnable) in send, in schedule's twin
        buf = io.BytesIO()
        gort.trace.start(buf)
        for i in range(3):
            ping.send(i)
            assert pong.recv() == i
        gort.trace.stop()
        ping.close()
        return buf.getvalue()

    t = check_go_structure(gort.run(main, procs=procs))
    # Every hand-off is recorded as made by a goroutine: echo's first one
    # too, made after it resumed in the twin, before any hook of its own.
    unblockers = [ev.g for ev in t.events if ev.typ == tr.EV_GO_UNBLOCK]
    assert unblockers == [2, 1] * 3, unblockers


def test_start_errors() -> None:
    with pytest.raises(RuntimeError, match=r"outside gort\.run"):
        gort.trace.start(io.BytesIO())

    def main() -> None:
        with pytest.raises(ValueError, match="format"):
            gort.trace.start(io.BytesIO(), format="xml")
        gort.trace.start(io.BytesIO())
        assert gort.trace.is_enabled()
        with pytest.raises(RuntimeError, match="already enabled"):
            gort.trace.start(io.BytesIO())
        gort.trace.stop()
        assert not gort.trace.is_enabled()
        gort.trace.stop()  # a no-op

    gort.run(main)


def test_trace_written_when_main_returns_while_tracing(tmp_path: Path) -> None:
    path = tmp_path / "t.trace"

    def main() -> None:
        gort.trace.start(path)
        gort.go(lambda: None)

    gort.run(main)
    check_go_structure(path.read_bytes())


# ---------------------------------------------------------------------------
# Chrome trace-event JSON.


def check_json(data: bytes) -> dict[str, Any]:
    doc = json.loads(data)
    events = doc["traceEvents"]
    flows: dict[int, list[dict[str, Any]]] = {}
    for e in events:
        assert {"name", "ph", "pid", "tid"} <= e.keys(), e
        ph = e["ph"]
        assert ph in ("X", "i", "C", "s", "f", "b", "e", "M"), e
        if ph != "M":
            assert isinstance(e["ts"], float | int) and e["ts"] >= 0, e
        if ph == "X":
            assert e["dur"] >= 0, e
        if ph == "C":
            assert all(isinstance(v, int) for v in e["args"].values()), e
        if ph in ("s", "f"):
            flows.setdefault(e["id"], []).append(e)
        if ph == "f":
            assert e.get("bp") == "e", e
    for fid, pair in flows.items():
        assert sorted(p["ph"] for p in pair) == ["f", "s"], (fid, pair)
        s = next(p for p in pair if p["ph"] == "s")
        f = next(p for p in pair if p["ph"] == "f")
        assert f["ts"] >= s["ts"], pair
    return doc


def test_json_format(procs: int) -> None:
    doc = check_json(traced(_everything, procs, fmt="json"))
    events = doc["traceEvents"]
    meta = [e for e in events if e["ph"] == "M" and e["name"] == "thread_name"]
    tracks = {(e["pid"], e["args"]["name"]) for e in meta}
    assert (1, "P0") in tracks
    gnames = [name for pid, name in tracks if pid == 2]
    assert len(gnames) == 5 and any("ponger" in n for n in gnames), gnames
    states = {e["name"] for e in events if e["ph"] == "X" and e["pid"] == 2}
    assert {"running", "runnable", "chan receive", "chan send", "sleep", "syscall"} <= states
    assert any(e["ph"] == "s" for e in events)  # unblock arrows
    counters = {e["name"] for e in events if e["ph"] == "C"}
    assert "Goroutines" in counters


def test_json_tasks_regions_logs() -> None:
    def main() -> None:
        ctx, task = gort.trace.new_task(None, "job")
        with gort.trace.region(ctx, "step"):
            gort.trace.log(ctx, "k", "v")
        task.end()

    events = check_json(traced(main, fmt="json"))["traceEvents"]
    assert [e["ph"] for e in events if e.get("cat") == "task"] == ["b", "e"]
    assert [e["name"] for e in events if e.get("cat") == "region"] == ["step"]
    logs = [e for e in events if e.get("cat") == "log"]
    assert logs[0]["name"] == "k" and logs[0]["args"]["message"] == "v"


# ---------------------------------------------------------------------------
# The CLI, panics and deadlocks.


PROG = """
import gort

def child(c):
    c.send(1)

def main():
    c = gort.chan()
    for _ in range(4):
        gort.go(child, c)
    for _ in range(4):
        c.recv()
    {end}
"""


@pytest.mark.parametrize(
    ("end", "status"),
    [("print('ok')", 0), ("raise ValueError('boom')", 2), ("c.recv()", 2)],
    ids=["returns", "panics", "deadlocks"],
)
def test_cli_trace_complete_however_program_ends(tmp_path: Path, end: str, status: int) -> None:
    proc = run_script(tmp_path, PROG.format(end=end), cli=("--trace", "out.trace"))
    assert proc.returncode == status, proc.stderr
    t = check_go_structure((tmp_path / "out.trace").read_bytes())
    assert types(t)[tr.EV_GO_CREATE] == 5


def test_cli_json_by_extension_and_stats(tmp_path: Path) -> None:
    proc = run_script(tmp_path, PROG.format(end="pass"), cli=("--trace", "out.json"))
    assert proc.returncode == 0, proc.stderr
    check_json((tmp_path / "out.json").read_bytes())
    proc = run_script(tmp_path, PROG.format(end="pass"), cli=("--trace", "out.trace"))
    assert proc.returncode == 0, proc.stderr
    stats = _gort_cli(tmp_path, "trace", "stats", "out.trace")
    assert stats.returncode == 0, stats.stderr
    lines = stats.stdout.splitlines()
    row = next(line for line in lines if line.startswith("prog.child"))
    assert row.split()[1] == "4"  # four goroutines started in child
    assert "chan send" in row
    assert any(line.startswith("Scheduler latency: n=") for line in lines)


def _gort_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gort", *args],
        capture_output=True,
        text=True,
        env=gort_env(),
        timeout=60,
        cwd=cwd,
    )


def test_stats_rejects_json(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text("{}")
    proc = _gort_cli(tmp_path, "trace", "stats", "x.json")
    assert proc.returncode == 1
    assert "not a Go execution trace" in proc.stderr
