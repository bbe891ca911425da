"""Two goroutines hit a ball back and forth over unbuffered channels.

Each hit is a hand-off: the sender blocks until the other goroutine takes
the ball. Run it with ``python -m gort examples/pingpong.py [HITS]``.
"""

from __future__ import annotations

import sys

import gort


def player(name: str, table: gort.Chan, back: gort.Chan, log: list[str]) -> None:
    """Take the ball from table, add a hit, send it back, until table closes."""
    for ball in table:
        log.append(f"{name} {ball}")
        back.send(ball + 1)


def main() -> None:
    hits = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    ping, pong = gort.chan(), gort.chan()
    log: list[str] = []
    gort.go(player, "pong", ping, pong, log)
    ball = 0
    for _ in range(hits):
        ping.send(ball)
        ball = pong.recv()
        log.append(f"ping {ball}")
    ping.close()
    print("\n".join(log))
    print(f"{hits} round trips, ball at {ball}")


if __name__ == "__main__":
    gort.run(main)
