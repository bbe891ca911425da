"""A pipeline: one generator, fan-out to several workers, fan-in to one channel.

    generate -> numbers -+-> square -+-> merge -> main
                         +-> square -+
                         +-> square -+

Each stage is a function that starts its goroutines and returns the channel
it sends on. Two rules make the shutdown work:

* A stage closes its output channel when it has sent everything (the
  ``finally`` blocks below). Closing is how "no more values" travels
  downstream: ``for v in ch`` ends once ``ch`` is closed and drained.
* ``done`` is closed by the consumer to cancel. A closed channel is ready
  for every receiver at once, so every send in the pipeline is a select
  between the send and ``done.recv``: no stage stays blocked on a send
  that nobody will ever receive.

Run it with ``python -m gort examples/pipeline.py [N] [WORKERS]``.
"""

from __future__ import annotations

import sys

import gort


def send(out: gort.Chan, value: object, done: gort.Chan) -> bool:
    """Send value on out unless done is closed first; True if it was sent."""
    i, _ = gort.select((out.send, value), done.recv)
    return i == 0


def generate(n: int, done: gort.Chan) -> gort.Chan:
    """Stage 1: the numbers 1..n, then close."""
    out = gort.chan()

    def run() -> None:
        try:
            for i in range(1, n + 1):
                if not send(out, i, done):
                    return
        finally:
            out.close()

    gort.go(run)
    return out


def square(numbers: gort.Chan, done: gort.Chan) -> gort.Chan:
    """Stage 2 (one worker): square every number it receives."""
    out = gort.chan()

    def run() -> None:
        try:
            for x in numbers:  # several workers receive from the same channel
                if not send(out, x * x, done):
                    return
        finally:
            out.close()

    gort.go(run)
    return out


def merge(sources: list[gort.Chan], done: gort.Chan) -> gort.Chan:
    """Stage 3: forward every source to one channel; close it when all have ended."""
    out = gort.chan()
    finished = gort.chan(len(sources))  # room for every forwarder's signal

    def forward(src: gort.Chan) -> None:
        try:
            for v in src:
                if not send(out, v, done):
                    return
        finally:
            finished.send(None)  # never blocks: the buffer has room

    def close_when_all_finished() -> None:
        for _ in sources:
            finished.recv()
        out.close()

    for src in sources:
        gort.go(forward, src)
    gort.go(close_when_all_finished)
    return out


def sum_of_squares(n: int, workers: int) -> int:
    """Run the whole pipeline to the end."""
    done = gort.chan()  # never closed here: the pipeline ends by itself
    numbers = generate(n, done)
    results = merge([square(numbers, done) for _ in range(workers)], done)
    return sum(results)  # iterates until merge closes results


def first_results(n: int, workers: int, want: int) -> list[int]:
    """Take the first few results, then cancel the rest of the pipeline."""
    done = gort.chan()
    numbers = generate(n, done)
    results = merge([square(numbers, done) for _ in range(workers)], done)
    taken = [results.recv() for _ in range(want)]
    done.close()  # cancel: every pending send in the pipeline gives up
    for _ in results:  # merge closes results once every stage has stopped
        pass
    return taken


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    total = sum_of_squares(n, workers)
    assert total == n * (n + 1) * (2 * n + 1) // 6
    print(f"sum of squares of 1..{n} with {workers} workers: {total}")

    taken = first_results(n, workers, want=5)
    # Which five squares arrive first depends on scheduling; that they are
    # squares of numbers in 1..n does not.
    assert all(round(v**0.5) ** 2 == v and v <= n * n for v in taken)
    print(f"took {len(taken)} results, then cancelled the pipeline")


if __name__ == "__main__":
    gort.run(main)
