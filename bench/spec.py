"""What the benchmark suite measures: workloads, systems, sizes and expected results.

This module imports no concurrency library, so the runner can read it without loading
gevent, trio or gort into its own process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

Unit = Literal["ns", "s"]

# GORT_BASE_SRC=<another checkout's src> adds "gort_base": the same gort workloads run
# from that tree in the same run, so a change is compared against a baseline commit
# with same-run ratios (systems/gort_base_sys.py).
GORT_BASE = "gort_base"
SYSTEMS: tuple[str, ...] = (
    "gort",
    *((GORT_BASE,) if os.environ.get("GORT_BASE_SRC") else ()),
    "greenlet",
    "gevent",
    "asyncio",
    "uvloop",
    "trio",
    "threads",
)
PEERS: tuple[str, ...] = ("gevent", "asyncio", "uvloop", "trio")
FLOOR = "greenlet"


@dataclass(frozen=True)
class Workload:
    """One workload: its unit and, for every system that runs it, (full size, quick size)."""

    name: str
    unit: Unit
    per: str  # what one op is, for "ns/<per>" headings; empty for seconds
    summary: str
    sizes: dict[str, tuple[int, int]]

    @property
    def unit_label(self) -> str:
        return f"ns/{self.per}" if self.unit == "ns" else "s"

    def size(self, system: str, quick: bool) -> int:
        full, small = self.sizes[system]
        return small if quick else full

    def warmup_size(self, system: str, quick: bool) -> int:
        """A small run done in the same process before the timed one (imports, hubs, caches)."""
        n = self.size(system, quick)
        if self.name == "sieve":
            return max(10, n // 40)
        return max(10, n // 100)

    def expected(self, n: int) -> int:
        return EXPECTED[self.name](n)


def _triangle(n: int) -> int:
    """sum(range(n)): each of n tasks reports its index."""
    return n * (n - 1) // 2


def _pingpong_total(n: int) -> int:
    """Round trip i sends i and gets i + 1 back; the sum of what came back."""
    return n * (n + 1) // 2


def nth_prime(n: int) -> int:
    """The n-th prime (1-based), by a plain sieve of Eratosthenes."""
    limit = 32
    while True:
        flags = bytearray([1]) * (limit + 1)
        flags[0:2] = b"\x00\x00"
        for p in range(2, int(limit**0.5) + 1):
            if flags[p]:
                flags[p * p :: p] = bytes(len(range(p * p, limit + 1, p)))
        primes = [i for i, is_prime in enumerate(flags) if is_prime]
        if len(primes) >= n:
            return primes[n - 1]
        limit *= 2


def _identity(n: int) -> int:
    return n


EXPECTED = {
    "spawn": _triangle,
    "pingpong": _pingpong_total,
    "pipe": _triangle,
    "sieve": nth_prime,
    "sleepers": _triangle,
    "timers": _identity,
    "mutex": _identity,
    "mutex_contended": _identity,
    "waitgroup": _identity,
    "ctxcancel": _identity,
}

CONTENDERS = 4  # mutex_contended: tasks sharing one lock
YIELD_EVERY = 64  # ... each yields while holding it once every YIELD_EVERY increments
CTX_FANOUT = 10  # ctxcancel: children per node

_SLEEP_PEERS = {s: (100_000, 10_000) for s in ("gort", *PEERS)}
_TIMER_SYSTEMS = {s: (100_000, 10_000) for s in ("gort", *PEERS)}

WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload(
            "spawn",
            "ns",
            "task",
            "spawn N tasks that each report to the parent, and wait for all; ns per task",
            {
                **{s: (100_000, 10_000) for s in ("gort", "greenlet", *PEERS)},
                "threads": (10_000, 2_000),
            },
        ),
        Workload(
            "pingpong",
            "ns",
            "round trip",
            "N round trips between two tasks over unbuffered channels; ns per round trip",
            {
                **{s: (100_000, 10_000) for s in ("gort", "greenlet", *PEERS)},
                "threads": (20_000, 2_000),
            },
        ),
        Workload(
            "pipe",
            "ns",
            "item",
            "N ints through a channel of capacity 128, producer closes; ns per item",
            {
                **{s: (1_000_000, 100_000) for s in ("gort", "greenlet", *PEERS)},
                "trio": (100_000, 10_000),
                "threads": (100_000, 10_000),
            },
        ),
        Workload(
            "sieve",
            "s",
            "",
            "concurrent prime sieve over unbuffered channels, first N primes; seconds",
            {
                **{s: (2_000, 500) for s in ("gort", "greenlet", *PEERS)},
                "threads": (500, 200),  # 2,000 primes take minutes with OS threads
            },
        ),
        Workload(
            "sleepers",
            "s",
            "",
            "N tasks each sleeping 10 ms, started together, wait for all; seconds",
            {**_SLEEP_PEERS, "threads": (5_000, 1_000)},
        ),
        Workload(
            "timers",
            "ns",
            "timer",
            "create a 10 s timer and stop it, N times; ns per timer",
            _TIMER_SYSTEMS,
        ),
        Workload(
            "mutex",
            "ns",
            "lock",
            "uncontended lock + unlock around an increment, N times; ns per lock",
            {
                **{s: (1_000_000, 100_000) for s in ("gort", *PEERS)},
                "threads": (1_000_000, 100_000),
            },
        ),
        Workload(
            "mutex_contended",
            "ns",
            "lock",
            f"{CONTENDERS} tasks increment one counter under one lock, N in all, each yielding"
            f" inside the lock every {YIELD_EVERY}; ns per lock",
            {s: (400_000, 40_000) for s in ("gort", *PEERS)},
        ),
        Workload(
            "waitgroup",
            "ns",
            "task",
            "N tasks each signal done once; the parent waits for all (WaitGroup fan-in);"
            " ns per task",
            {s: (100_000, 10_000) for s in ("gort", *PEERS)},
        ),
        Workload(
            "ctxcancel",
            "ns",
            "node",
            "a tree (fan-out 10) of N cancellable nodes, a task waiting on each; cancel the root"
            " and wait until every task saw it; ns per node",
            {s: (10_000, 2_000) for s in ("gort", *PEERS)},
        ),
    )
}

for _w in WORKLOADS.values():
    _w.sizes[GORT_BASE] = _w.sizes["gort"]

SLEEP_SECONDS = 0.010
PIPE_CAPACITY = 128
TIMER_SECONDS = 10.0
