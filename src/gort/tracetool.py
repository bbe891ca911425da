"""``python -m gort trace stats FILE``: `go tool trace`'s analyses, in a terminal.

Reads a trace in Go's format (version 1.19: what gort writes, and what Go
1.11 to 1.21 runtimes wrote) and prints:

* the goroutine analysis, one row per start function (Go groups goroutines
  the same way): how many, their execution time, scheduler wait (runnable
  but not running), time in syscalls, and block time by cause;
* the scheduler latency: percentiles of the time from becoming runnable
  (created, unblocked, yielded, back from a syscall) to running.

Events are merged by timestamp, which is the order gort's files (and any
trace whose clock is sane) already have.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from .runtime import trace as tr

_BLOCK_CAUSE = {
    tr.EV_GO_SLEEP: "sleep",
    tr.EV_GO_BLOCK: "other",
    tr.EV_GO_BLOCK_SEND: "chan send",
    tr.EV_GO_BLOCK_RECV: "chan receive",
    tr.EV_GO_BLOCK_SELECT: "select",
    tr.EV_GO_BLOCK_SYNC: "sync",
    tr.EV_GO_BLOCK_COND: "sync.Cond",
    tr.EV_GO_BLOCK_NET: "network",
}


@dataclass
class Event:
    ts: int
    typ: int
    p: int
    g: int
    args: list[int]
    stk: int = 0


@dataclass
class Trace:
    events: list[Event]
    strings: dict[int, str]
    stacks: dict[int, list[tuple[str, str, int]]]
    ticks_per_sec: int


class TraceError(ValueError):
    """The file is not a trace this reader understands."""


def _uvarint(data: bytes, pos: int) -> tuple[int, int]:
    v = shift = 0
    while True:
        if pos >= len(data):
            raise TraceError("truncated trace")
        b = data[pos]
        pos += 1
        v |= (b & 0x7F) << shift
        if b < 0x80:
            return v, pos
        shift += 7


def parse(data: bytes) -> Trace:
    if not data.startswith(b"go 1.") or b" trace\x00" not in data[:16]:
        raise TraceError("not a Go execution trace (a .json trace is for Perfetto)")
    pos = 16
    events: list[Event] = []
    strings: dict[int, str] = {}
    raw_stacks: dict[int, list[int]] = {}
    ticks = 0
    p = 0
    curg: dict[int, int] = {}
    ts = 0
    while pos < len(data):
        head = data[pos]
        pos += 1
        typ = head & 0x3F
        narg = (head >> 6) + 1
        if typ == tr.EV_STRING:
            sid, pos = _uvarint(data, pos)
            n, pos = _uvarint(data, pos)
            strings[sid] = data[pos : pos + n].decode(errors="replace")
            pos += n
            continue
        args: list[int] = []
        if narg < 4:
            for _ in range(narg):
                v, pos = _uvarint(data, pos)
                args.append(v)
        else:
            n, pos = _uvarint(data, pos)
            end = pos + n
            while pos < end:
                v, pos = _uvarint(data, pos)
                args.append(v)
        if typ == tr.EV_USER_LOG:
            n, pos = _uvarint(data, pos)
            pos += n
        if typ == tr.EV_BATCH:
            p = args[0] if args[0] < 1 << 63 else args[0] - (1 << 64)
            ts = args[1]
            continue
        if typ == tr.EV_FREQUENCY:
            ticks = args[0]
            continue
        if typ == tr.EV_STACK:
            raw_stacks[args[0]] = args[2:]
            continue
        if typ in (tr.EV_TIMER_GOROUTINE, tr.EV_CPU_SAMPLE):
            continue
        ts += args[0]
        rest = args[1:]
        stk = 0
        if typ in tr.HAS_STACK and rest:
            stk = rest.pop()
        g = curg.get(p, 0)
        if typ == tr.EV_GO_START or typ == tr.EV_GO_START_LOCAL:
            g = curg[p] = rest[0]
        elif typ in _STOPS:
            curg[p] = 0
        events.append(Event(ts, typ, p, g, rest, stk))
    if not ticks:
        raise TraceError("no EvFrequency event (truncated trace?)")
    stacks: dict[int, list[tuple[str, str, int]]] = {}
    for sid, flat in raw_stacks.items():
        stacks[sid] = [
            (strings.get(flat[i + 1], "?"), strings.get(flat[i + 2], "?"), flat[i + 3])
            for i in range(0, len(flat) - 3, 4)
        ]
    events.sort(key=lambda e: e.ts)
    return Trace(events, strings, stacks, ticks)


_STOPS = tr.BLOCK_EVENTS | {
    tr.EV_GO_END,
    tr.EV_GO_STOP,
    tr.EV_GO_SCHED,
    tr.EV_GO_PREEMPT,
    tr.EV_GO_SYSBLOCK,
}


_WAKES = (tr.EV_GO_UNBLOCK, tr.EV_GO_UNBLOCK_LOCAL, tr.EV_GO_SYSEXIT, tr.EV_GO_SYSEXIT_LOCAL)


@dataclass
class GStats:
    """One goroutine's times, in ticks."""

    name: str = "?"
    exec: int = 0
    sched: int = 0
    syscall: int = 0
    blocked: dict[str, int] = field(default_factory=dict)
    state: str = "runnable"
    since: int = 0


def analyse(t: Trace) -> tuple[dict[int, GStats], list[int]]:
    """Per-goroutine times and every scheduler latency (ticks)."""
    gs: dict[int, GStats] = {}
    latencies: list[int] = []

    def get(goid: int, ts: int) -> GStats:
        s = gs.get(goid)
        if s is None:
            s = gs[goid] = GStats(since=ts)
        return s

    def move(s: GStats, state: str, ts: int) -> None:
        d = max(0, ts - s.since)
        if s.state == "running":
            s.exec += d
        elif s.state == "runnable":
            s.sched += d
        elif s.state == "syscall":
            s.syscall += d
        elif s.state != "dead":
            s.blocked[s.state] = s.blocked.get(s.state, 0) + d
        s.state, s.since = state, ts

    end = t.events[-1].ts if t.events else 0
    for ev in t.events:
        typ = ev.typ
        if typ == tr.EV_GO_CREATE:
            s = get(ev.args[0], ev.ts)
            stk = t.stacks.get(ev.args[1])
            if stk:
                s.name = stk[0][0]
        elif typ in (tr.EV_GO_START, tr.EV_GO_START_LOCAL):
            s = get(ev.args[0], ev.ts)
            if s.state == "runnable":
                latencies.append(ev.ts - s.since)
            move(s, "running", ev.ts)
        elif typ in _BLOCK_CAUSE:
            move(get(ev.g, ev.ts), _BLOCK_CAUSE[typ], ev.ts)
        elif typ in (tr.EV_GO_SCHED, tr.EV_GO_PREEMPT):
            move(get(ev.g, ev.ts), "runnable", ev.ts)
        elif typ == tr.EV_GO_SYSBLOCK:
            move(get(ev.g, ev.ts), "syscall", ev.ts)
        elif typ in (tr.EV_GO_END, tr.EV_GO_STOP):
            move(get(ev.g, ev.ts), "dead", ev.ts)
        elif typ in (
            tr.EV_GO_UNBLOCK,
            tr.EV_GO_UNBLOCK_LOCAL,
            tr.EV_GO_SYSEXIT,
            tr.EV_GO_SYSEXIT_LOCAL,
        ):
            move(get(ev.args[0], ev.ts), "runnable", ev.ts)
        elif typ == tr.EV_GO_WAITING:
            move(get(ev.args[0], ev.ts), "other", ev.ts)
        elif typ == tr.EV_GO_IN_SYSCALL:
            move(get(ev.args[0], ev.ts), "syscall", ev.ts)
    for s in gs.values():
        move(s, "dead", end)
    return gs, latencies


def percentile(sorted_values: list[int], q: float) -> int:
    if not sorted_values:
        return 0
    i = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[i]


def _ms(ticks: int, tps: int) -> str:
    return f"{ticks * 1000 / tps:.3f}"


def report(t: Trace) -> Iterator[str]:
    gs, latencies = analyse(t)
    tps = t.ticks_per_sec
    groups: dict[str, list[GStats]] = {}
    for s in gs.values():
        groups.setdefault(s.name, []).append(s)
    yield f"Goroutine analysis: {len(gs)} goroutines, {len(t.events)} events (times in ms)"
    yield (
        f"{'start function':40} {'count':>6} {'execution':>10} {'sched wait':>10} "
        f"{'syscall':>9}  blocked"
    )
    rows = sorted(groups.items(), key=lambda kv: -sum(s.exec for s in kv[1]))
    for name, members in rows:
        blocked: dict[str, int] = {}
        for s in members:
            for cause, d in s.blocked.items():
                blocked[cause] = blocked.get(cause, 0) + d
        causes = ", ".join(
            f"{c} {_ms(d, tps)}" for c, d in sorted(blocked.items(), key=lambda kv: -kv[1]) if d
        )
        yield (
            f"{name[-40:]:40} {len(members):>6} {_ms(sum(s.exec for s in members), tps):>10} "
            f"{_ms(sum(s.sched for s in members), tps):>10} "
            f"{_ms(sum(s.syscall for s in members), tps):>9}  {causes or '-'}"
        )
    latencies.sort()
    yield ""
    if latencies:
        us = 1e6 / tps
        parts = " ".join(
            f"{label}={percentile(latencies, q) * us:.1f}us"
            for label, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))
        )
        yield (f"Scheduler latency: n={len(latencies)} {parts} max={latencies[-1] * us:.1f}us")
    else:
        yield "Scheduler latency: no goroutine became runnable and then ran"


def stats(f: BinaryIO, out: list[str] | None = None) -> list[str]:
    lines = list(report(parse(f.read())))
    if out is not None:
        out.extend(lines)
    return lines


def main(argv: list[str]) -> int:
    """``trace stats FILE``."""
    if len(argv) != 2 or argv[0] != "stats":
        print("usage: python -m gort trace stats FILE", file=sys.stderr)
        return 2
    try:
        with open(argv[1], "rb") as f:
            lines = stats(f)
    except (OSError, TraceError) as e:
        print(f"gort trace: {argv[1]}: {e}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0
