"""The greenlet floor: bare greenlet switches, no scheduler, no queues of waiters.

Each workload does the least switching its shape allows, so the numbers are a lower bound
for any runtime built on greenlets.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from greenlet import getcurrent, greenlet

from spec import PIPE_CAPACITY
from systems._timing import Measured, timed


def _report(i: int) -> int:
    return i


def spawn(n: int) -> int:
    """Create a greenlet, switch into it, let it finish: the cost of one short task."""
    total = 0
    for i in range(n):
        total += greenlet(_report).switch(i)
    return total


def _echo(v: int) -> None:
    parent = getcurrent().parent
    while True:
        v = parent.switch(v + 1)


def pingpong(n: int) -> int:
    """A round trip is two direct switches: main -> echo with i, echo -> main with i + 1."""
    echo = greenlet(_echo)
    total = 0
    for i in range(n):
        total += echo.switch(i)
    return total


def pipe(n: int) -> int:
    """The producer fills a deque of 128 and hands the whole batch to the consumer."""
    buf: deque[int] = deque()

    def produce() -> None:
        consumer = getcurrent().parent
        for i in range(n):
            if len(buf) == PIPE_CAPACITY:
                consumer.switch()
            buf.append(i)

    producer = greenlet(produce)
    total = 0
    while not producer.dead:
        producer.switch()
        while buf:
            total += buf.popleft()
    return total


def _generate(consumer: greenlet) -> None:
    i = 2
    while True:
        consumer = consumer.switch(i)
        i += 1


def _filter(upstream: greenlet, prime: int) -> Callable[[greenlet], None]:
    def run(consumer: greenlet) -> None:
        me = getcurrent()
        while True:
            v = upstream.switch(me)
            if v % prime:
                consumer = consumer.switch(v)

    return run


def sieve(n: int) -> int:
    """Pull-driven sieve: a consumer switches to its upstream passing itself, and the
    upstream switches back with the next value (an unbuffered hand-off, 2 switches)."""
    me = getcurrent()
    upstream = greenlet(_generate)
    prime = 0
    for _ in range(n):
        prime = upstream.switch(me)
        upstream = greenlet(_filter(upstream, prime))
    return prime


WORKLOADS: dict[str, Callable[[int], int]] = {
    "spawn": spawn,
    "pingpong": pingpong,
    "pipe": pipe,
    "sieve": sieve,
}


def measure(name: str, n: int, warmup: int, procs: int | None) -> Measured:
    return timed(WORKLOADS[name], n, warmup)
