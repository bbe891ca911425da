"""gort.alloc against bytearray: allocation speed, TCP echo reads, RSS after churn.

    PYTHONPATH=src python bench/alloc.py            # about two minutes
    PYTHONPATH=src python bench/alloc.py --quick    # smaller sizes, a few seconds

Prints a Markdown report (the "Allocator" section of bench/RESULTS.md):

* alloc+free: ``gort.alloc(n).free()`` inside gort.run (GOMAXPROCS 1) against
  ``bytearray(n)`` (made and dropped) and a reused bytearray (taken from and
  put back on a list: what a hand-written pool costs), and the floor of any
  allocator written in Python (``take(n).free()`` where both do nothing), for 64 B, 4 KiB and
  64 KiB; runs interleaved, median ns per allocation, in CPU time of the
  looping thread (``time.thread_time``), which a loaded machine disturbs
  less than wall time.
* echo: a gort.net echo server whose handler reads with ``conn.read_buffer``
  (pooled, no copy, no zero-fill) against one that reads with ``conn.read``;
  clients (in the same program, on the same thread at GOMAXPROCS 1) send 4 KiB
  messages and wait for each echo; CPU time of that thread per round trip.
* churn: 1,000,000 allocations of random sizes (log-uniform, 64 B to 64 KiB,
  one byte written per 4 KiB page, as a read would) over a working set of
  1,000 live buffers, then everything freed; each system in a fresh
  interpreter. RSS (from /proc/self/statm) over the interpreter's baseline,
  after the churn and after freeing (gort: once the scavenger has released
  the idle pages; bytearray: after gc.collect(), which is all it gets).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gort

ROOT = Path(__file__).resolve().parents[1]
SIZES = (64, 4096, 65536)


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# -- alloc+free --------------------------------------------------------------------


def _gort_loop(n: int, count: int) -> float:
    alloc = gort.alloc
    t = time.thread_time()
    for _ in range(count):
        alloc(n).free()
    return time.thread_time() - t


def _bytearray_loop(n: int, count: int) -> float:
    t = time.thread_time()
    for _ in range(count):
        bytearray(n)
    return time.thread_time() - t


class _Nothing:
    """What an allocator written in Python cannot go below: a call that
    returns an object and a method call on it, doing nothing."""

    __slots__ = ()

    def free(self) -> None:
        pass


_NOTHING = _Nothing()


def _take_nothing(n: int, zero: bool = False) -> _Nothing:
    return _NOTHING


def _floor_loop(n: int, count: int) -> float:
    alloc = _take_nothing
    t = time.thread_time()
    for _ in range(count):
        alloc(n).free()
    return time.thread_time() - t


def _reuse_loop(n: int, count: int) -> float:
    pool = [bytearray(n)]
    take, put = pool.pop, pool.append
    t = time.thread_time()
    for _ in range(count):
        put(take())
    return time.thread_time() - t


LOOPS: dict[str, Callable[[int, int], float]] = {
    "gort.alloc": _gort_loop,
    "bytearray": _bytearray_loop,
    "bytearray reuse": _reuse_loop,
    "two empty calls": _floor_loop,
}


def bench_alloc(count: int, runs: int) -> dict[int, dict[str, float]]:
    """Median ns per allocation+free, per size and system, runs interleaved."""

    def main() -> dict[int, dict[str, float]]:
        samples: dict[int, dict[str, list[float]]] = {n: {k: [] for k in LOOPS} for n in SIZES}
        for n in SIZES:
            for loop in LOOPS.values():
                loop(n, count // 100)  # warm up
        for _ in range(runs):
            for n in SIZES:
                for name, loop in LOOPS.items():
                    samples[n][name].append(loop(n, count) / count * 1e9)
        return {n: {k: statistics.median(v) for k, v in s.items()} for n, s in samples.items()}

    result: dict[int, dict[str, float]] = gort.run(main, procs=1)
    return result


# -- TCP echo ------------------------------------------------------------------------


def _echo(pooled: bool, messages: int, clients: int, size: int) -> float:
    """CPU seconds for clients x messages round trips of size bytes through a gort echo
    server (clients in the same program, so both ends' costs count)."""
    net: Any = __import__("gort.net", fromlist=["listen"])

    def handle(conn: Any) -> None:
        with conn:
            while True:
                if pooled:
                    with conn.read_buffer(size) as buf:
                        if not len(buf):
                            return
                        conn.write(buf.view)
                else:
                    data = conn.read(size)
                    if not data:
                        return
                    conn.write(data)

    def client(addr: str, done: Any) -> None:
        msg = b"x" * size
        conn = net.dial("tcp", addr)
        with conn:
            for _ in range(messages):
                conn.write(msg)
                got = 0
                while got < size:
                    got += len(conn.read(size - got))
        done.send(None)

    def main() -> float:
        ln = net.listen("tcp", "127.0.0.1:0")

        def serve() -> None:
            while True:
                try:
                    conn = ln.accept()
                except Exception:
                    return
                gort.go(handle, conn)

        gort.go(serve)
        addr = str(ln.addr)
        done = gort.chan()
        t = time.thread_time()  # GOMAXPROCS 1: every goroutine runs on this thread
        for _ in range(clients):
            gort.go(client, addr, done)
        for _ in range(clients):
            done.recv()
        elapsed = time.thread_time() - t
        ln.close()
        return elapsed

    result: float = gort.run(main, procs=1)
    return result


def bench_echo(messages: int, runs: int) -> dict[str, float] | str:
    try:
        import gort.net as net

        if not hasattr(net.Conn, "read_buffer"):
            return "gort.net has no Conn.read_buffer yet"
    except ImportError:
        return "gort.net is not there yet"
    clients, size = 10, 4096
    samples: dict[str, list[float]] = {"pooled (read_buffer)": [], "plain (read)": []}
    for _ in range(runs):
        for name in samples:
            pooled = name.startswith("pooled")
            secs = _echo(pooled, messages, clients, size)
            samples[name].append(secs / (messages * clients) * 1e6)
    return {k: statistics.median(v) for k, v in samples.items()}


# -- RSS after churn -----------------------------------------------------------------


def _touch(view: Any, n: int) -> None:
    for i in range(0, n, 4096):
        view[i] = 1


def churn_child(system: str, count: int) -> dict[str, int]:
    """Runs in a fresh interpreter: the churn, RSS before/after."""
    rng = random.Random(1)
    lo, hi = math.log(64), math.log(65536)
    sizes = [int(math.exp(rng.uniform(lo, hi))) for _ in range(4096)]
    picks = [rng.randrange(1000) for _ in range(4096)]
    base = rss()
    out: dict[str, int] = {}
    if system == "bytearray":
        live_b: list[bytearray | None] = [None] * 1000
        for i in range(count):
            n = sizes[i & 4095]
            b = bytearray(n)
            _touch(b, n)
            live_b[picks[(i * 7) & 4095]] = b
        out["after_churn"] = rss() - base
        live_b.clear()
        gc.collect()
        out["after_free"] = rss() - base
        return out

    def main() -> None:
        live: list[Any] = [None] * 1000
        alloc = gort.alloc
        for i in range(count):
            n = sizes[i & 4095]
            b = alloc(n)
            _touch(b.view, n)
            j = picks[(i * 7) & 4095]
            old = live[j]
            if old is not None:
                old.free()
            live[j] = b
        out["after_churn"] = rss() - base
        for b in live:
            if b is not None:
                b.free()
        live.clear()
        t0 = time.monotonic()
        while time.monotonic() < t0 + 30:  # until the scavenger has met its goal
            s = gort.mem_stats()
            if s.heap_sys - s.heap_released <= s.heap_inuse * 1.1 + (1 << 20):
                break
            gort.sleep(0.1)
        out["after_free"] = rss() - base
        out["scavenge_wait_ms"] = int((time.monotonic() - t0) * 1000)

    gort.run(main, procs=1)
    return out


def bench_churn(count: int) -> dict[str, dict[str, int]]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    result = {}
    for system in ("gort.alloc", "bytearray"):
        proc = subprocess.run(
            [sys.executable, __file__, "--churn-child", system, "--count", str(count)],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        if proc.returncode != 0:
            raise SystemExit(f"churn child {system} failed:\n{proc.stderr}")
        result[system] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# -- report --------------------------------------------------------------------------


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f}"


def report(args: argparse.Namespace) -> list[str]:
    load0 = os.getloadavg()[0]
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    allocs = bench_alloc(args.count, args.runs)
    echo = bench_echo(args.messages, args.runs)
    churn = bench_churn(args.churn)
    load1 = os.getloadavg()[0]
    lines = [
        f"- date: {started}; commit {_git_commit()}; Python {platform.python_version()}, "
        f"{os.cpu_count()} cores; load average (1 min) {load0:.2f} before, {load1:.2f} after",
        f"- command: `PYTHONPATH=src python bench/alloc.py{' --quick' if args.quick else ''}`",
        "",
        f"alloc+free, ns of CPU per allocation (median of {args.runs} interleaved runs of "
        f"{args.count:,}; inside gort.run, GOMAXPROCS 1):",
        "",
        "| size | gort.alloc + free | bytearray(n) | bytearray reuse | two empty calls "
        "| bytearray / gort | reuse / gort |",
        "|---|---|---|---|---|---|---|",
    ]
    for n in SIZES:
        r = allocs[n]
        g = r["gort.alloc"]
        lines.append(
            f"| {n:,} B | {g:,.0f} | {r['bytearray']:,.0f} | {r['bytearray reuse']:,.0f} "
            f"| {r['two empty calls']:,.0f} "
            f"| {r['bytearray'] / g:.2f}x | {r['bytearray reuse'] / g:.2f}x |"
        )
    lines += ["", "Ratios are other / gort: above 1.00x gort is faster.", ""]
    if isinstance(echo, str):
        lines += [f"TCP echo: n/a ({echo}).", ""]
    else:
        pooled, plain = echo["pooled (read_buffer)"], echo["plain (read)"]
        lines += [
            f"TCP echo, 10 clients x {args.messages:,} round trips of 4 KiB, us of CPU per "
            f"round trip, server and clients in one gort program (median of {args.runs}):",
            "",
            "| pooled reads (read_buffer) | plain reads (read) | plain / pooled |",
            "|---|---|---|",
            f"| {pooled:.1f} | {plain:.1f} | {plain / pooled:.2f}x |",
            "",
        ]
    lines += [
        f"RSS over the interpreter's baseline, MiB, churn of {args.churn:,} random-size "
        "allocations (64 B..64 KiB) over 1,000 live buffers:",
        "",
        "| system | after churn (1,000 live) | after freeing all |",
        "|---|---|---|",
    ]
    for system, r in churn.items():
        lines.append(f"| {system} | {_mib(r['after_churn'])} | {_mib(r['after_free'])} |")
    wait = churn["gort.alloc"].get("scavenge_wait_ms", 0)
    lines += ["", f"gort: measured after the scavenger settled ({wait} ms after the frees)."]
    return lines


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--churn-child", default="")
    p.add_argument("--count", type=int, default=0)
    args = p.parse_args(argv)
    if args.churn_child:
        print(json.dumps(churn_child(args.churn_child, args.count)))
        return
    args.count = 20_000 if args.quick else 200_000
    args.runs = 3 if args.quick else 5
    args.messages = 200 if args.quick else 2_000
    args.churn = 50_000 if args.quick else 1_000_000
    print("\n".join(report(args)))


if __name__ == "__main__":
    main(sys.argv[1:])
