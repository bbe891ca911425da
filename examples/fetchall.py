"""Fan-out with errgroup: fetch pages concurrently, at most 3 at once, under one deadline.

The "pages" are timers standing in for network calls. Each fetch watches the
group's context, so the first failure (here, the deadline) stops the rest.
A Mutex guards the shared results and counters.

Run it with ``python -m gort examples/fetchall.py``.
"""

from __future__ import annotations

from typing import Any

import gort

LATENCY = {"/a": 0.01, "/b": 0.02, "/c": 0.005, "/d": 0.015, "/e": 0.01, "/slow": 10.0}


class Stats:
    def __init__(self) -> None:
        self.mu = gort.Mutex()
        self.inflight = 0  # guarded by mu
        self.peak = 0  # guarded by mu
        self.pages: dict[str, str] = {}  # guarded by mu


def fetch(ctx: gort.Context, path: str, stats: Stats) -> Any:
    with stats.mu:
        stats.inflight += 1
        stats.peak = max(stats.peak, stats.inflight)
    try:
        i, _ = gort.select(gort.after(LATENCY[path]).recv, ctx.done().recv)
        if i == 1:
            return ctx.err()  # Go's `return ctx.Err()`: the group records the error
        with stats.mu:
            stats.pages[path] = f"<html>{path}</html>"
        return None
    finally:
        with stats.mu:
            stats.inflight -= 1


def fetch_all(paths: list[str], timeout: float) -> tuple[Stats, Any]:
    parent, cancel = gort.with_timeout(gort.background(), timeout)
    try:
        g, ctx = gort.Group.with_context(parent)
        g.set_limit(3)
        stats = Stats()
        for path in paths:
            g.go(fetch, ctx, path, stats)  # waits while 3 fetches run
        return stats, g.wait()
    finally:
        cancel()


def main() -> None:
    stats, err = fetch_all(["/a", "/b", "/c", "/d", "/e"], timeout=1.0)
    print(f"fetched {len(stats.pages)} pages, at most {stats.peak} at once, error: {err}")
    stats, err = fetch_all(["/a", "/slow", "/c"], timeout=0.05)
    print(f"fetched {sorted(stats.pages)}, error: {err}")


if __name__ == "__main__":
    gort.run(main)
