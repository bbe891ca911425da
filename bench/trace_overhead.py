"""What the execution tracer costs: off (the flag tests), and on.

    python bench/trace_overhead.py [--runs 7] [--n 200000]

Three builds of the same checkout, each timed on ping-pong and spawn in a
fresh interpreter, runs interleaved, the best run reported (least disturbed by load):

* ``stripped``: src/ with every tracer hook site (``if sched.tracing:`` and
  the call under it) deleted: the runtime as if the tracer did not exist;
* ``off``: src/ as it is, tracing off (each site is one flag test, except
  in the switch path's functions, which run copies without their sites);
* ``on``: src/ with ``gort.trace.start`` before the timed part (Go format,
  into memory); the time to merge and encode at ``stop`` and the bytes per
  event are reported separately.

Prints Markdown rows for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"

CHILD = r"""
import io, json, sys, time
import gort, gort.trace
from gort.runtime import trace as rt

workload, n, tracing = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "on"
out = {}

def report(done, i):
    done.send(i)

def spawn():
    done = gort.chan(n)
    for i in range(n):
        gort.go(report, done, i)
    for _ in range(n):
        done.recv()

def echo(ping, pong):
    for v in ping:
        pong.send(v + 1)

def pingpong():
    ping, pong = gort.chan(), gort.chan()
    gort.go(echo, ping, pong)
    for i in range(n):
        ping.send(i)
        pong.recv()
    ping.close()

def main():
    buf = io.BytesIO()
    if tracing:
        gort.trace.start(buf)
    t0 = time.perf_counter()
    {"spawn": spawn, "pingpong": pingpong}[workload]()
    out["seconds"] = time.perf_counter() - t0
    if tracing:
        t = rt.tracer
        out["events"] = sum(len(st.buf) for st in t.ps.values()) + len(t.glob.buf)
        t1 = time.perf_counter()
        gort.trace.stop()
        out["stop_seconds"] = time.perf_counter() - t1
        out["bytes"] = len(buf.getvalue())

gort.run(main)
print(json.dumps(out))
"""

SITE = re.compile(r"^(\s*)if sched\.tracing:\n\1    [^\n]*\n", re.M)


def stripped_copy(dest: Path) -> int:
    """Copy src/ to dest with every hook site removed; returns how many."""
    shutil.copytree(SRC, dest / "src")
    removed = 0
    for path in (dest / "src" / "gort" / "runtime").glob("*.py"):
        text = path.read_text()
        new, n = SITE.subn("", text)
        if n:
            path.write_text(new)
            removed += n
    return removed


def run(src: Path, workload: str, n: int, tracing: bool) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(src))
    for name in ("GOMAXPROCS", "GODEBUG"):
        env.pop(name, None)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, workload, str(n), "on" if tracing else "off"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=True,
    )
    result: dict[str, float] = json.loads(proc.stdout.splitlines()[-1])
    return result


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--n-on", type=int, default=50_000, help="N with tracing on")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sites = stripped_copy(Path(tmp))
        stripped = Path(tmp) / "src"
        times: dict[tuple[str, str], list[float]] = {}
        extra: dict[str, list[dict[str, float]]] = {}
        for r in range(args.runs):
            for workload in ("pingpong", "spawn"):
                for variant, src in (("stripped", stripped), ("off", SRC)):
                    res = run(src, workload, args.n, False)
                    times.setdefault((workload, variant), []).append(res["seconds"] / args.n)
                if r < 3:
                    res = run(SRC, workload, args.n_on, True)
                    times.setdefault((workload, "on"), []).append(res["seconds"] / args.n_on)
                    extra.setdefault(workload, []).append(res)
            print(f"run {r + 1}/{args.runs} done", file=sys.stderr)
    print(f"hook sites removed for `stripped`: {sites}\n")
    print(
        "| workload | stripped ns/op | off ns/op | off vs stripped | on ns/op | on vs off "
        "| events/op | bytes/event | stop (merge+encode) us/event |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for workload in ("pingpong", "spawn"):
        s = min(times[(workload, "stripped")]) * 1e9  # best of runs: least disturbed by load
        off = min(times[(workload, "off")]) * 1e9
        on = min(times[(workload, "on")]) * 1e9
        ex = extra[workload]
        events = statistics.median(e["events"] for e in ex)
        nbytes = statistics.median(e["bytes"] for e in ex)
        stop = statistics.median(e["stop_seconds"] for e in ex)
        print(
            f"| {workload} | {s:,.0f} | {off:,.0f} | {(off / s - 1) * 100:+.1f}% | {on:,.0f} "
            f"| {on / off:.1f}x | {events / args.n_on:.1f} | {nbytes / events:.1f} "
            f"| {stop / events * 1e6:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
