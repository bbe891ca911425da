"""Timeouts and periodic work: select with gort.after, a Ticker, and polling.

Three patterns that come straight from Go:

* a request with a timeout: ``select`` between the reply channel and
  ``gort.after(timeout)``;
* a non-blocking poll: ``select`` with ``gort.default``;
* periodic work with an overall deadline: ``select`` between a Ticker's
  channel and one ``gort.after`` made before the loop.

Run it with ``python -m gort examples/timeouts.py``.
"""

from __future__ import annotations

import gort


def server(delay: float, reply: gort.Chan) -> None:
    """Answer after delay seconds."""
    gort.sleep(delay)
    # reply has room for one value, so this send never blocks: if the client
    # has stopped waiting, the answer sits in the buffer and this goroutine
    # still ends instead of waiting forever for a receiver.
    reply.send(f"answer after {delay}s")


def fetch(delay: float, timeout: float) -> str:
    """Ask a server that takes delay seconds; give up after timeout seconds."""
    reply = gort.chan(1)
    gort.go(server, delay, reply)
    i, answer = gort.select(reply.recv, gort.after(timeout).recv)
    if i == 0:
        return str(answer)
    return f"timed out after {timeout}s"


def poll(delay: float, interval: float) -> str:
    """Check for the answer without blocking; do other work in between."""
    reply = gort.chan(1)
    gort.go(server, delay, reply)
    polls = 0
    while True:
        i, answer = gort.select(reply.recv, gort.default)
        if i == 0:
            # The number of polls depends on timing, so it is not printed.
            assert polls > 0, "the answer cannot be there before the server slept"
            return f"{answer} (found by polling)"
        polls += 1
        gort.sleep(interval)  # "other work"


def heartbeat(beats: int, period: float, limit: float) -> str:
    """Print a beat every period seconds, beats times, unless limit passes first."""
    ticker = gort.Ticker(period)
    deadline = gort.after(limit)  # one channel for the whole loop, made once
    try:
        for n in range(1, beats + 1):
            i, _ = gort.select(ticker.c.recv, deadline.recv)
            if i == 1:
                return f"deadline passed after {n - 1} beats"
            print(f"beat {n}")
        return f"{beats} beats"
    finally:
        ticker.stop()  # a Ticker runs until it is stopped


def main() -> None:
    print("fast:", fetch(delay=0.01, timeout=1.0))
    print("slow:", fetch(delay=1.0, timeout=0.05))
    print("poll:", poll(delay=0.03, interval=0.005))
    print("heartbeat:", heartbeat(beats=3, period=0.02, limit=5.0))
    print("heartbeat:", heartbeat(beats=1000, period=0.2, limit=0.05))


if __name__ == "__main__":
    gort.run(main)
