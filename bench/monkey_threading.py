"""Patched threading, queue and concurrent.futures: gort.monkey against gevent.monkey.

    python bench/monkey_threading.py [--runs 3]

The same plain threaded programs after ``gort.monkey.patch_all()`` (inside
``gort.run``, GOMAXPROCS 1 like gevent's one thread) and after
``gevent.monkey.patch_all()``, each run in a fresh interpreter (this file,
``--child``), the two systems interleaved run by run; the median is
reported. Every run checks its results before its time counts. Prints a
Markdown report: machine, load average, commit, table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# workload -> (what one op is, what the program does)
WORKLOADS = {
    "threads": ("thread", "2,000 Threads, each sleeping 0.05 s: start all, join all"),
    "lock": ("acquire", "8 Threads x 20,000 `with lock:` on one Lock, a yield inside"),
    "queue": ("item", "4 producer and 4 consumer Threads, 50,000 items through a Queue(100)"),
    "executor": ("task", "ThreadPoolExecutor(16).map over 20,000 tiny tasks"),
}


def w_threads() -> int:
    import threading
    import time as t

    done = []
    ts = [threading.Thread(target=lambda: (t.sleep(0.05), done.append(1))) for _ in range(2000)]
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    assert len(done) == 2000
    return 2000


def w_lock() -> int:
    import threading
    import time as t

    lock = threading.Lock()
    count = [0]

    def work() -> None:
        for _ in range(20000):
            with lock:
                count[0] += 1
                if count[0] % 100 == 0:
                    t.sleep(0)  # let a waiter queue up now and then

    ts = [threading.Thread(target=work) for _ in range(8)]
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    assert count[0] == 8 * 20000
    return count[0]


def w_queue() -> int:
    import queue
    import threading

    q: queue.Queue[int | None] = queue.Queue(100)
    total = [0]
    n = 50000

    def produce(k: int) -> None:
        for i in range(k, n, 4):
            q.put(i)

    def consume() -> None:
        s = 0
        while (item := q.get()) is not None:
            s += item
        total[0] += s

    ps = [threading.Thread(target=produce, args=(k,)) for k in range(4)]
    cs = [threading.Thread(target=consume) for _ in range(4)]
    for th in ps + cs:
        th.start()
    for th in ps:
        th.join()
    for _ in cs:
        q.put(None)
    for th in cs:
        th.join()
    assert total[0] == n * (n - 1) // 2
    return n


def w_executor() -> int:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(16) as ex:
        out = list(ex.map(lambda x: x * 2, range(20000)))
    assert out == [x * 2 for x in range(20000)]
    return 20000


PROGRAMS: dict[str, Callable[[], int]] = {
    "threads": w_threads,
    "lock": w_lock,
    "queue": w_queue,
    "executor": w_executor,
}


def child(system: str, workload: str) -> None:
    """Patch, run the program, print {"s": seconds, "ops": n, "cpu": seconds}."""
    if system == "gort":
        import gort
        import gort.monkey

        gort.monkey.patch_all()

        def run(fn: Callable[[], int]) -> int:
            return gort.run(fn, procs=1)  # type: ignore[no-any-return]

    else:
        import gevent.monkey

        gevent.monkey.patch_all()

        def run(fn: Callable[[], int]) -> int:
            return fn()

    c0 = time.process_time()
    t0 = time.perf_counter()
    ops = run(PROGRAMS[workload])
    s = time.perf_counter() - t0
    print(json.dumps({"s": s, "ops": ops, "cpu": time.process_time() - c0}))


def one(system: str, workload: str) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    p = subprocess.run(
        [sys.executable, __file__, "--child", system, workload],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    if p.returncode != 0:
        raise SystemExit(f"{system} {workload} failed:\n{p.stdout}{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--child", nargs=2, metavar=("SYSTEM", "WORKLOAD"))
    opts = ap.parse_args()
    if opts.child:
        child(*opts.child)
        return
    import gevent

    load = os.getloadavg()
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    print(
        f"* machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"Python {platform.python_version()}; gevent {gevent.__version__}"
    )
    print(
        f"* date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average at "
        f"start: {' '.join(f'{x:.2f}' for x in load)}; commit {commit}; median of {opts.runs}"
    )
    print()
    print(
        "| workload | program | gort s | gort ops/s | gort CPU s | gevent s | gevent ops/s "
        "| gevent CPU s | gevent/gort time |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, (unit, what) in WORKLOADS.items():
        res: dict[str, list[dict[str, float]]] = {"gort": [], "gevent": []}
        for _ in range(opts.runs):
            for system in ("gort", "gevent"):
                res[system].append(one(system, name))
        med = {
            k: {f: statistics.median(r[f] for r in v) for f in ("s", "ops", "cpu")}
            for k, v in res.items()
        }
        g, e = med["gort"], med["gevent"]
        print(
            f"| {name} | {what} | {g['s']:.2f} | {g['ops'] / g['s']:,.0f} {unit}/s | "
            f"{g['cpu']:.2f} | {e['s']:.2f} | {e['ops'] / e['s']:,.0f} {unit}/s | "
            f"{e['cpu']:.2f} | {e['s'] / g['s']:.2f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()
