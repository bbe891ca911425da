"""Unmodified blocking libraries: gort.monkey against gevent.monkey.

    python bench/monkey.py [--runs 3] [--only requests,redis] [--procs 1]

The same programs (plain blocking code: requests, redis-py, psycopg 3,
subprocess, smtplib), fanned out over goroutines after
``gort.monkey.patch_all()`` and over greenlets after
``gevent.monkey.patch_all()``, each run in a fresh interpreter (this file,
``--child``), the two systems interleaved run by run; the median is
reported. The servers are real and shared by both (tests/realservers.py:
a ThreadingHTTPServer, redis-server, a PostgreSQL cluster, a threaded SMTP
server), each in its own process. Every run checks its results before its
time counts. Prints a Markdown report: machine, load average, commit, table.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))

FanOut = Callable[[int, Callable[[int], None]], None]

# workload (the module it imports) -> (what one op is, what the program does)
WORKLOADS = {
    "requests": ("GET", "200 goroutines x 10 GETs, a requests.Session each (keep-alive)"),
    "redis": ("command", "500 x 100 commands (SET, GET, a 38-command MULTI pipeline, LRANGE)"),
    "psycopg": ("query", "50 x (connect, SELECT pg_sleep(0.2), 100 x SELECT %s)"),
    "subprocess": ("process", "100 x subprocess.run(sh -c 'sleep 0.05; echo i')"),
    "smtplib": ("mail", "50 clients x 40 mails, one SMTP connection each"),
}


# -- the programs (run in the child, after patching) -------------------------


def w_requests(fan_out: FanOut, env: dict[str, str]) -> int:
    import requests

    url = env["URL"]
    got: list[str] = []

    def one(i: int) -> None:
        with requests.Session() as s:
            for j in range(10):
                got.append(s.get(f"{url}/{i}/{j}", timeout=60).text)

    fan_out(200, one)
    assert sorted(got) == sorted(f"/{i}/{j}" for i in range(200) for j in range(10))
    return len(got)


def w_redis(fan_out: FanOut, env: dict[str, str]) -> int:
    import redis

    r = redis.Redis(port=int(env["REDIS_PORT"]), max_connections=600)
    r.flushdb()
    bad: list[int] = []

    def one(i: int) -> None:
        for j in range(30):
            r.set(f"k{i}:{j}", j)
        if [r.get(f"k{i}:{j}") for j in range(30)] != [str(j).encode() for j in range(30)]:
            bad.append(i)
        p = r.pipeline(transaction=True)
        for _ in range(10):
            p.incr(f"c{i}")
        for j in range(28):
            p.rpush(f"l{i}", j)
        if p.execute() != [*range(1, 11), *range(1, 29)] or len(r.lrange(f"l{i}", 0, -1)) != 28:
            bad.append(i)

    fan_out(500, one)
    assert not bad and r.dbsize() == 500 * 32, bad[:5]
    r.close()
    return 500 * 100


def w_psycopg(fan_out: FanOut, env: dict[str, str]) -> int:
    import psycopg

    got: list[int] = []

    def one(i: int) -> None:
        with psycopg.connect(env["DSN"]) as conn:
            conn.execute("SELECT pg_sleep(0.2)")
            for j in range(100):
                row = conn.execute("SELECT %s::int", (i * 100 + j,)).fetchone()
                assert row is not None
                got.append(row[0])

    fan_out(50, one)
    assert sorted(got) == [i * 100 + j for i in range(50) for j in range(100)]
    return 50 * 101


def w_subprocess(fan_out: FanOut, env: dict[str, str]) -> int:
    got: list[int] = []

    def one(i: int) -> None:
        p = subprocess.run(
            ["sh", "-c", f"sleep 0.05; echo {i}"], capture_output=True, text=True, check=True
        )
        got.append(int(p.stdout))

    fan_out(100, one)
    assert sorted(got) == list(range(100))
    return 100


def w_smtplib(fan_out: FanOut, env: dict[str, str]) -> int:
    import smtplib

    port = int(env["SMTP_PORT"])
    sent: list[int] = []

    def one(i: int) -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
            for j in range(40):
                msg = f"Subject: {i}.{j}\r\n\r\nbody {i}.{j}\r\n"
                assert s.sendmail(f"a{i}@example.com", [f"b{i}@example.com"], msg) == {}
                sent.append(j)

    fan_out(50, one)
    assert len(sent) == 2000
    return 2000


PROGRAMS: dict[str, Callable[[FanOut, dict[str, str]], int]] = {
    "requests": w_requests,
    "redis": w_redis,
    "psycopg": w_psycopg,
    "subprocess": w_subprocess,
    "smtplib": w_smtplib,
}


def child(system: str, workload: str, procs: int) -> None:
    """Patch, import the library, run the program once; print a JSON line."""
    program = PROGRAMS[workload]
    env = dict(os.environ)
    if system == "gevent":
        from gevent import monkey

        monkey.patch_all()
        import gevent

        def fan_out(n: int, fn: Callable[[int], None]) -> None:
            gevent.joinall([gevent.spawn(fn, i) for i in range(n)], raise_error=True)

        def run(main: Callable[[], Any]) -> Any:
            return main()

    else:
        import gort
        import gort.monkey

        gort.monkey.patch_all()

        def fan_out(n: int, fn: Callable[[int], None]) -> None:
            wg = gort.WaitGroup()

            def one(i: int) -> None:
                try:
                    fn(i)
                finally:
                    wg.done()

            for i in range(n):
                wg.add(1)
                gort.go(one, i)
            wg.wait()

        def run(main: Callable[[], Any]) -> Any:
            return gort.run(main, procs=procs)

    importlib.import_module(workload)  # the library, patched, before the clock starts

    def timed() -> tuple[float, int]:
        t0 = time.perf_counter()
        ops = program(fan_out, env)
        return time.perf_counter() - t0, ops

    cpu0 = time.process_time()
    seconds, ops = run(timed)
    print(json.dumps({"seconds": seconds, "ops": ops, "cpu": time.process_time() - cpu0}))


# -- the driver -----------------------------------------------------------------


def _env(servers: dict[str, Any]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GOMAXPROCS", "GODEBUG")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    if "http" in servers:
        env["URL"] = servers["http"].info["url"]
    if "redis" in servers:
        env["REDIS_PORT"] = str(servers["redis"].port)
    if "pg" in servers:
        env["DSN"] = servers["pg"].info["dsn"]
    if "smtp" in servers:
        env["SMTP_PORT"] = str(servers["smtp"].port)
    return env


def _one(system: str, workload: str, procs: int, env: dict[str, str]) -> dict[str, Any]:
    args = [sys.executable, __file__, "--child", system, workload, "--procs", str(procs)]
    p = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600, check=False)
    if p.returncode != 0:
        return {"error": (p.stderr or p.stdout).strip().splitlines()[-1:]}
    return json.loads(p.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _start_servers(workloads: list[str]) -> dict[str, Any]:
    import realservers

    wanted = {
        "http": ("requests", lambda: realservers.start_http(0.0)),
        "redis": ("redis", realservers.start_redis),
        "pg": ("psycopg", realservers.start_postgres),
        "smtp": ("smtplib", realservers.start_smtp),
    }
    return {name: start() for name, (w, start) in wanted.items() if w in workloads}


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    import gevent

    return (
        f"* machine: {cpu}, {os.cpu_count()} cores; Python {platform.python_version()}; "
        f"gevent {gevent.__version__}\n"
        f"* date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; commit {commit}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", nargs=2, metavar=("SYSTEM", "WORKLOAD"))
    ap.add_argument("--procs", type=int, default=1, help="GOMAXPROCS for gort (default 1)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", default=",".join(WORKLOADS))
    ap.add_argument("--systems", default="gort,gevent")
    opts = ap.parse_args()
    if opts.child:
        child(opts.child[0], opts.child[1], opts.procs)
        return
    workloads = [w for w in opts.only.split(",") if w]
    systems = opts.systems.split(",")
    header = _machine()
    servers = _start_servers(workloads)
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    try:
        env = _env(servers)
        for _ in range(opts.runs):
            for w in workloads:
                for s in systems:
                    results.setdefault((w, s), []).append(_one(s, w, opts.procs, env))
    finally:
        for srv in servers.values():
            srv.stop()
    print(header)
    print(f"* gort GOMAXPROCS {opts.procs}; median of {opts.runs} interleaved runs\n")
    _report(workloads, systems, results)


def _report(
    workloads: list[str], systems: list[str], results: dict[tuple[str, str], list[dict[str, Any]]]
) -> None:
    cols = " | ".join(f"{s} s | {s} ops/s | {s} CPU s" for s in systems)
    print(f"| workload | {cols} | gevent/gort time |")
    print("|---|" + "---:|" * (3 * len(systems) + 1))
    for w in workloads:
        unit, _ = WORKLOADS[w]
        cells: list[str] = []
        med: dict[str, float] = {}
        for s in systems:
            runs = results[(w, s)]
            ok = [r for r in runs if "seconds" in r]
            if not ok:
                cells += [f"n/a ({runs[0].get('error')})", "", ""]
                continue
            sec = statistics.median(r["seconds"] for r in ok)
            cpu = statistics.median(r["cpu"] for r in ok)
            med[s] = sec
            cells += [f"{sec:.2f}", f"{ok[0]['ops'] / sec:,.0f} {unit}/s", f"{cpu:.2f}"]
        ratio = f"{med['gevent'] / med['gort']:.2f}x" if {"gort", "gevent"} <= med.keys() else ""
        print(f"| {w} | {' | '.join(cells)} | {ratio} |")
    for (w, s), runs in results.items():
        for r in runs:
            if "error" in r:
                print(f"\n{w}/{s} failed: {r['error']}")


if __name__ == "__main__":
    main()
