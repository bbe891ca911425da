"""OS threads with queue.Queue: the baseline that green threads exist to beat.

Sizes are smaller here (see spec.py); per-op figures stay comparable. queue.Queue has no
close, so a None sentinel ends a stream, and Queue(maxsize=1) stands in for unbuffered.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

from spec import PIPE_CAPACITY, SLEEP_SECONDS
from systems._timing import Measured, timed


def _report(i: int, out: list[int]) -> None:
    out.append(i)


def _start_all(target: Callable[..., None], n: int, out: list[int]) -> list[threading.Thread]:
    threads = [threading.Thread(target=target, args=(i, out)) for i in range(n)]
    for t in threads:
        t.start()
    return threads


def spawn(n: int) -> int:
    out: list[int] = []
    for t in _start_all(_report, n, out):
        t.join()
    return sum(out)


def _echo(ping: queue.Queue[int | None], pong: queue.Queue[int]) -> None:
    while (v := ping.get()) is not None:
        pong.put(v + 1)


def pingpong(n: int) -> int:
    ping: queue.Queue[int | None] = queue.Queue(maxsize=1)
    pong: queue.Queue[int] = queue.Queue(maxsize=1)
    echo = threading.Thread(target=_echo, args=(ping, pong))
    echo.start()
    total = 0
    for i in range(n):
        ping.put(i)
        total += pong.get()
    ping.put(None)
    echo.join()
    return total


def _produce(q: queue.Queue[int | None], n: int) -> None:
    for i in range(n):
        q.put(i)
    q.put(None)


def pipe(n: int) -> int:
    q: queue.Queue[int | None] = queue.Queue(maxsize=PIPE_CAPACITY)
    producer = threading.Thread(target=_produce, args=(q, n))
    producer.start()
    total = 0
    while (v := q.get()) is not None:
        total += v
    producer.join()
    return total


def _generate(out: queue.Queue[int]) -> None:
    i = 2
    while True:
        out.put(i)
        i += 1


def _filter(src: queue.Queue[int], dst: queue.Queue[int], prime: int) -> None:
    while True:
        v = src.get()
        if v % prime:
            dst.put(v)


def _daemon(target: Callable[..., None], *args: object) -> None:
    threading.Thread(target=target, args=args, daemon=True).start()


def sieve(n: int) -> int:
    ch: queue.Queue[int] = queue.Queue(maxsize=1)
    _daemon(_generate, ch)
    prime = 0
    for _ in range(n):
        prime = ch.get()
        out: queue.Queue[int] = queue.Queue(maxsize=1)
        _daemon(_filter, ch, out, prime)
        ch = out
    return prime  # daemon threads stay blocked until the interpreter exits


def _sleeper(i: int, out: list[int]) -> None:
    time.sleep(SLEEP_SECONDS)
    out.append(i)


def sleepers(n: int) -> int:
    out: list[int] = []
    for t in _start_all(_sleeper, n, out):
        t.join()
    return sum(out)


def mutex(n: int) -> int:
    lock = threading.Lock()
    count = 0
    for _ in range(n):
        with lock:
            count += 1
    return count


WORKLOADS: dict[str, Callable[[int], int]] = {
    "spawn": spawn,
    "pingpong": pingpong,
    "pipe": pipe,
    "sieve": sieve,
    "sleepers": sleepers,
    "mutex": mutex,
}


def measure(name: str, n: int, warmup: int, procs: int | None) -> Measured:
    return timed(WORKLOADS[name], n, warmup)
