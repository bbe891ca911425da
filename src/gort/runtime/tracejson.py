"""Chrome trace-event JSON for a gort trace (what Perfetto and
chrome://tracing load).

Layout: process 1 "Procs" has a track per P (the goroutine running on it,
as slices) plus "GC" and "no P" tracks; process 2 "Goroutines" has a track
per goroutine with its states as slices (running, runnable, the block
cause, syscall), user regions nested in them and logs as instants. Each
unblock and each create draws a flow arrow from the goroutine (or P) that
did it to the start of the goroutine it woke. Counters: goroutines by
state, heap. User tasks are async spans. Timestamps are microseconds since
the trace started.

The input is the merged event list of trace.merge, so each goroutine's
events arrive in a legal order.
"""

from __future__ import annotations

import json
from typing import Any

from . import trace as tr

PID_PROCS = 1
PID_GOROUTINES = 2
TID_GC = 100_000
TID_NOP = 100_001

_BLOCK_NAMES = {
    tr.EV_GO_SLEEP: "sleep",
    tr.EV_GO_BLOCK: "blocked",
    tr.EV_GO_BLOCK_SEND: "chan send",
    tr.EV_GO_BLOCK_RECV: "chan receive",
    tr.EV_GO_BLOCK_SELECT: "select",
    tr.EV_GO_BLOCK_SYNC: "sync",
    tr.EV_GO_BLOCK_COND: "sync.Cond.Wait",
    tr.EV_GO_BLOCK_NET: "IO wait",
    tr.EV_GO_STOP: "blocked forever",
}


class _JSONWriter:
    def __init__(self, t: tr.Tracer, start: int) -> None:
        self.t = t
        self.start = start
        self.out: list[dict[str, Any]] = []
        self.names: dict[int, str] = {}  # goid -> function name
        self.state: dict[int, tuple[str, float]] = {}  # goid -> (state, since)
        self.running_on: dict[int, tuple[int, float]] = {}  # goid -> (pid, since)
        self.pending_flow: dict[int, int] = {}  # goid -> flow id ending at its start
        self.regions: dict[int, list[tuple[str, float]]] = {}
        self.flows = 0
        self.counts = {"running": 0, "runnable": 0, "waiting": 0}
        self.stack_names = {sid: key for key, sid in t.stacks.items()}

    def us(self, ticks: int) -> float:
        return (ticks - self.start) / 1000.0

    def fn_of(self, stkid: int) -> str:
        key = self.stack_names.get(stkid)
        if not key:
            return "?"
        return self.t.frames[key[0] - 1][0]

    def stack_args(self, stkid: int) -> dict[str, Any]:
        key = self.stack_names.get(stkid)
        if not key:
            return {}
        return {
            "stack": [
                f"{fn} {file}:{line}" for fn, file, line in (self.t.frames[pc - 1] for pc in key)
            ]
        }

    def gname(self, goid: int) -> str:
        return f"G{goid} {self.names.get(goid, '')}".strip()

    # -- state slices ------------------------------------------------------

    def enter(self, goid: int, state: str, ts: float) -> None:
        prev = self.state.get(goid)
        if prev is not None:
            name, since = prev
            self.out.append(
                {
                    "name": name,
                    "ph": "X",
                    "ts": since,
                    "dur": max(0.0, ts - since),
                    "pid": PID_GOROUTINES,
                    "tid": goid,
                }
            )
            self.count(name, -1)
        if state:
            self.state[goid] = (state, ts)
            self.count(state, 1)
        else:
            self.state.pop(goid, None)

    def count(self, state: str, d: int) -> None:
        key = state if state in ("running", "runnable") else "waiting"
        self.counts[key] += d

    def emit_counts(self, ts: float) -> None:
        self.out.append(
            {
                "name": "Goroutines",
                "ph": "C",
                "ts": ts,
                "pid": PID_PROCS,
                "tid": 0,
                "args": dict(self.counts),
            }
        )

    def flow_from(self, pid: int, curg: int, ts: float, target: int, name: str) -> None:
        self.flows += 1
        fid = self.flows
        src_pid, src_tid = (PID_GOROUTINES, curg) if curg else (PID_PROCS, _tid(pid))
        self.out.append(
            {
                "name": name,
                "cat": "flow",
                "ph": "s",
                "id": fid,
                "ts": ts,
                "pid": src_pid,
                "tid": src_tid,
            }
        )
        self.pending_flow[target] = fid

    def run_start(self, goid: int, pid: int, ts: float) -> None:
        self.enter(goid, "running", ts)
        self.running_on[goid] = (pid, ts)
        fid = self.pending_flow.pop(goid, 0)
        if fid:
            self.out.append(
                {
                    "name": "unblock",
                    "cat": "flow",
                    "ph": "f",
                    "bp": "e",
                    "id": fid,
                    "ts": ts,
                    "pid": PID_GOROUTINES,
                    "tid": goid,
                }
            )

    def run_end(self, goid: int, ts: float) -> None:
        on = self.running_on.pop(goid, None)
        if on is not None:
            pid, since = on
            self.out.append(
                {
                    "name": self.gname(goid),
                    "ph": "X",
                    "ts": since,
                    "dur": max(0.0, ts - since),
                    "pid": PID_PROCS,
                    "tid": _tid(pid),
                }
            )

    # -- the walk ----------------------------------------------------------

    def walk(self, events: list[tuple[int, tr.Event]]) -> None:
        curg: dict[int, int] = {}
        gc_since = 0.0
        for pid, ev in events:
            ts = self.us(ev[0])
            typ = ev[1]
            g = curg.get(pid, 0)
            if typ == tr.EV_GO_CREATE:
                goid = ev[2]
                self.names[goid] = self.fn_of(ev[3])
                self.enter(goid, "runnable", ts)
                self.flow_from(pid, g, ts, goid, "go")
                self.emit_counts(ts)
            elif typ == tr.EV_GO_START:
                goid = ev[2]
                curg[pid] = goid
                self.run_start(goid, pid, ts)
                self.emit_counts(ts)
            elif typ in _BLOCK_NAMES or typ in (tr.EV_GO_SCHED, tr.EV_GO_PREEMPT):
                self.run_end(g, ts)
                state = _BLOCK_NAMES.get(typ, "runnable")
                self.enter(g, state, ts)
                if typ != tr.EV_GO_STOP:
                    self.stack_instant(g, ts, tr.EV_NAMES[typ], ev[-1])
                curg[pid] = 0
                self.emit_counts(ts)
            elif typ == tr.EV_GO_SYSBLOCK:
                self.run_end(g, ts)
                self.enter(g, "syscall", ts)
                curg[pid] = 0
                self.emit_counts(ts)
            elif typ == tr.EV_GO_END:
                self.run_end(g, ts)
                self.enter(g, "", ts)
                curg[pid] = 0
                self.emit_counts(ts)
            elif typ in (tr.EV_GO_UNBLOCK, tr.EV_GO_SYSEXIT):
                goid = ev[2]
                self.enter(goid, "runnable", ts)
                if typ == tr.EV_GO_UNBLOCK:
                    self.flow_from(pid, g, ts, goid, "unblock")
                self.emit_counts(ts)
            elif typ in (tr.EV_GO_WAITING, tr.EV_GO_IN_SYSCALL):
                state = "waiting" if typ == tr.EV_GO_WAITING else "syscall"
                self.enter(ev[2], state, ts)
            elif typ == tr.EV_GC_START:
                gc_since = ts
            elif typ == tr.EV_GC_DONE:
                self.out.append(
                    {
                        "name": "GC",
                        "ph": "X",
                        "ts": gc_since,
                        "dur": max(0.0, ts - gc_since),
                        "pid": PID_PROCS,
                        "tid": TID_GC,
                    }
                )
            elif typ == tr.EV_HEAP_ALLOC:
                self.out.append(
                    {
                        "name": "Heap",
                        "ph": "C",
                        "ts": ts,
                        "pid": PID_PROCS,
                        "tid": 0,
                        "args": {"bytes": ev[2]},
                    }
                )
            elif typ in (tr.EV_PROC_START, tr.EV_PROC_STOP):
                self.out.append(
                    {
                        "name": "ProcStart" if typ == tr.EV_PROC_START else "ProcStop",
                        "ph": "i",
                        "s": "t",
                        "ts": ts,
                        "pid": PID_PROCS,
                        "tid": _tid(pid),
                    }
                )
            else:
                self.user(typ, ev, g, ts)
        end = self.us(self.t.end_ticks) if self.t.end_ticks else 0.0
        for goid in list(self.running_on):
            self.run_end(goid, max(end, self.running_on[goid][1]))
        for goid in list(self.state):
            self.enter(goid, "", max(end, self.state[goid][1]))
        for goid in list(self.regions):
            for name, since in self.regions.pop(goid):
                self.region_slice(goid, name, since, max(end, since))
        for fid in self.pending_flow.values():
            # A wake-up the trace ended before: end the arrow where it began.
            self.out.append(
                {
                    "name": "unblock",
                    "cat": "flow",
                    "ph": "f",
                    "bp": "e",
                    "id": fid,
                    "ts": end,
                    "pid": PID_PROCS,
                    "tid": TID_NOP,
                }
            )

    def stack_instant(self, goid: int, ts: float, name: str, stkid: int) -> None:
        if stkid:
            self.out.append(
                {
                    "name": name,
                    "ph": "i",
                    "s": "t",
                    "ts": ts,
                    "pid": PID_GOROUTINES,
                    "tid": goid,
                    "args": self.stack_args(stkid),
                }
            )

    def user(self, typ: int, ev: tr.Event, g: int, ts: float) -> None:
        t = self.t
        strings = {sid: s for s, sid in t.strings.items()}
        if typ == tr.EV_USER_TASK_CREATE:
            self.out.append(
                {
                    "name": strings.get(ev[4], "?"),
                    "cat": "task",
                    "ph": "b",
                    "id": ev[2],
                    "ts": ts,
                    "pid": PID_GOROUTINES,
                    "tid": g,
                    "args": {"parent": ev[3]},
                }
            )
        elif typ == tr.EV_USER_TASK_END:
            self.out.append(
                {
                    "name": "task",
                    "cat": "task",
                    "ph": "e",
                    "id": ev[2],
                    "ts": ts,
                    "pid": PID_GOROUTINES,
                    "tid": g,
                }
            )
        elif typ == tr.EV_USER_REGION:
            name = strings.get(ev[4], "?")
            stack = self.regions.setdefault(g, [])
            if ev[3] == 0:
                stack.append((name, ts))
            elif stack:
                rname, since = stack.pop()
                self.region_slice(g, rname, since, ts)
        elif typ == tr.EV_USER_LOG:
            self.out.append(
                {
                    "name": strings.get(ev[3], "log"),
                    "cat": "log",
                    "ph": "i",
                    "s": "t",
                    "ts": ts,
                    "pid": PID_GOROUTINES,
                    "tid": g,
                    "args": {"message": ev[5], "task": ev[2]},
                }
            )

    def region_slice(self, goid: int, name: str, since: float, ts: float) -> None:
        self.out.append(
            {
                "name": name,
                "cat": "region",
                "ph": "X",
                "ts": since,
                "dur": max(0.0, ts - since),
                "pid": PID_GOROUTINES,
                "tid": goid,
            }
        )

    def metadata(self, pids: set[int]) -> list[dict[str, Any]]:
        meta: list[dict[str, Any]] = [
            {
                "name": "process_name",
                "ph": "M",
                "pid": PID_PROCS,
                "tid": 0,
                "args": {"name": "Procs"},
            },
            {
                "name": "process_name",
                "ph": "M",
                "pid": PID_GOROUTINES,
                "tid": 0,
                "args": {"name": "Goroutines"},
            },
            {
                "name": "thread_name",
                "ph": "M",
                "pid": PID_PROCS,
                "tid": TID_GC,
                "args": {"name": "GC"},
            },
        ]
        for pid in sorted(pids):
            name = "no P" if pid == tr.GLOBAL_P else f"P{pid}"
            meta.append(
                {
                    "name": "thread_name",
                    "ph": "M",
                    "pid": PID_PROCS,
                    "tid": _tid(pid),
                    "args": {"name": name},
                }
            )
        for goid in sorted(self.names):
            meta.append(
                {
                    "name": "thread_name",
                    "ph": "M",
                    "pid": PID_GOROUTINES,
                    "tid": goid,
                    "args": {"name": self.gname(goid)},
                }
            )
        return meta


def _tid(pid: int) -> int:
    return TID_NOP if pid == tr.GLOBAL_P else pid


def encode(t: tr.Tracer, events: list[tuple[int, tr.Event]]) -> bytes:
    start = events[0][1][0] if events else t.start_ticks
    w = _JSONWriter(t, start)
    w.walk(events)
    doc = {
        "traceEvents": w.metadata({pid for pid, _ in events}) + w.out,
        "displayTimeUnit": "ns",
        "otherData": {"producer": "gort", "format": "trace-event"},
    }
    return json.dumps(doc, separators=(",", ":")).encode()
