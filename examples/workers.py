"""A worker pool: a producer, four squaring workers, a timeout per result.

Run it with ``python -m gort examples/workers.py``.
"""

from __future__ import annotations

import gort


def produce(jobs: gort.Chan, n: int) -> None:
    for i in range(n):
        jobs.send(i)
    jobs.close()


def square(jobs: gort.Chan, results: gort.Chan) -> None:
    for n in jobs:  # receives until jobs is closed and drained
        results.send(n * n)


def main() -> int:
    jobs, results = gort.chan(16), gort.chan()
    gort.go(produce, jobs, 10)
    for _ in range(4):
        gort.go(square, jobs, results)
    total = 0
    for _ in range(10):
        i, v = gort.select(results.recv, gort.after(1.0).recv)
        if i == 1:
            raise TimeoutError("no result within a second")
        total += v
    print(total)  # 285 (under python -m gort, as in Go, main's value is not printed)
    return total


if __name__ == "__main__":
    gort.run(main)
