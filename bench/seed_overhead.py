"""Ping-pong with and without a scheduler seed (gort.run(seed=)).

Two goroutines pass a value back and forth over unbuffered channels; the
cost per round trip is measured unseeded and seeded, interleaved, median of
--runs. Run it with another tree's src/ first on PYTHONPATH to compare the
unseeded figure with a commit before the seeded scheduler existed.

    PYTHONPATH=src python bench/seed_overhead.py [--n 100000] [--runs 5]
"""

from __future__ import annotations

import argparse
import inspect
import os
import statistics
import time

import gort


def _pingpong(n: int) -> float:
    ping: gort.Chan = gort.chan()
    pong: gort.Chan = gort.chan()

    def player() -> None:
        for v in ping:
            pong.send(v)

    gort.go(player)
    start = time.perf_counter()
    for i in range(n):
        ping.send(i)
        pong.recv()
    elapsed = time.perf_counter() - start
    ping.close()
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    seeded_ok = "seed" in inspect.signature(gort.run).parameters
    plain: list[float] = []
    seeded: list[float] = []
    gort.run(_pingpong, a.n // 100)  # warm-up
    for _ in range(a.runs):
        plain.append(gort.run(_pingpong, a.n, procs=1))
        if seeded_ok:
            seeded.append(gort.run(_pingpong, a.n, procs=1, seed=1))
    p = statistics.median(plain) / a.n * 1e9
    print(f"gort from {os.path.dirname(gort.__file__)}; load average {os.getloadavg()[0]:.2f}")
    print(f"pingpong unseeded: {p:,.0f} ns/round trip")
    if seeded:
        s = statistics.median(seeded) / a.n * 1e9
        print(f"pingpong seed=1:   {s:,.0f} ns/round trip ({s / p:.2f}x unseeded)")


if __name__ == "__main__":
    main()
