"""gevent, as a gevent program would be written: spawn/joinall, Channel, Queue, hub timers.

Nothing is monkey-patched.
"""

from __future__ import annotations

from collections.abc import Callable

import gevent
from gevent.event import Event
from gevent.lock import Semaphore
from gevent.queue import Channel, Queue

from spec import (
    CONTENDERS,
    CTX_FANOUT,
    PIPE_CAPACITY,
    SLEEP_SECONDS,
    TIMER_SECONDS,
    YIELD_EVERY,
)
from systems._timing import Measured, timed


def _report(i: int) -> int:
    return i


def spawn(n: int) -> int:
    tasks = [gevent.spawn(_report, i) for i in range(n)]
    gevent.joinall(tasks)
    return sum(g.value for g in tasks)


def _echo(ping: Channel, pong: Channel) -> None:
    for v in ping:
        pong.put(v + 1)


def pingpong(n: int) -> int:
    ping, pong = Channel(), Channel()
    echo = gevent.spawn(_echo, ping, pong)
    total = 0
    for i in range(n):
        ping.put(i)
        total += pong.get()
    ping.put(StopIteration)  # gevent's end-of-iteration marker: ends `for v in ping`
    echo.join()
    return total


def _produce(q: Queue, n: int) -> None:
    for i in range(n):
        q.put(i)
    q.put(StopIteration)


def pipe(n: int) -> int:
    q = Queue(PIPE_CAPACITY)
    gevent.spawn(_produce, q, n)
    total = 0
    for v in q:
        total += v
    return total


def _generate(out: Channel) -> None:
    i = 2
    while True:
        out.put(i)
        i += 1


def _filter(src: Channel, dst: Channel, prime: int) -> None:
    for v in src:
        if v % prime:
            dst.put(v)


def sieve(n: int) -> int:
    ch = Channel()
    gevent.spawn(_generate, ch)
    prime = 0
    for _ in range(n):
        prime = ch.get()
        out = Channel()
        gevent.spawn(_filter, ch, out, prime)
        ch = out
    return prime  # the chain is left blocked, as Go abandons it when main returns


def _sleeper(i: int) -> int:
    gevent.sleep(SLEEP_SECONDS)
    return i


def sleepers(n: int) -> int:
    tasks = [gevent.spawn(_sleeper, i) for i in range(n)]
    gevent.joinall(tasks)
    return sum(g.value for g in tasks)


def _never() -> None:
    raise AssertionError("a stopped timer fired")


def timers(n: int) -> int:
    loop = gevent.get_hub().loop
    stopped = 0
    for _ in range(n):
        t = loop.timer(TIMER_SECONDS)
        t.start(_never)
        was_active = t.active
        t.stop()
        t.close()
        stopped += was_active and not t.active
    return stopped


def mutex(n: int) -> int:
    lock = Semaphore(1)
    count = 0
    for _ in range(n):
        with lock:
            count += 1
    return count


def _contend(lock: Semaphore, box: list[int], k: int) -> None:
    for i in range(k):
        with lock:
            box[0] += 1
            if i % YIELD_EVERY == 0:
                gevent.sleep(0)


def mutex_contended(n: int) -> int:
    lock = Semaphore(1)
    box = [0]
    gevent.joinall([gevent.spawn(_contend, lock, box, n // CONTENDERS) for _ in range(CONTENDERS)])
    return box[0]


def _done(box: list[int]) -> None:
    box[0] += 1


def waitgroup(n: int) -> int:
    box = [0]
    gevent.joinall([gevent.spawn(_done, box) for _ in range(n)])
    return box[0]


def _node(i: int, n: int, box: list[int], started: list[int], all_in: Event) -> None:
    """A greenlet of the tree: spawn its children, wait; when killed, kill them first."""
    first = i * CTX_FANOUT + 1
    children = [
        gevent.spawn(_node, c, n, box, started, all_in)
        for c in range(first, min(first + CTX_FANOUT, n + 1))
    ]
    started[0] += 1
    if started[0] == n + 1:
        all_in.set()
    try:
        Event().wait()
    finally:
        gevent.killall(children)
        if i:
            box[0] += 1


def ctxcancel(n: int) -> int:
    box, started, all_in = [0], [0], Event()
    root = gevent.spawn(_node, 0, n, box, started, all_in)
    all_in.wait()
    root.kill()
    return box[0]


WORKLOADS: dict[str, Callable[[int], int]] = {
    "spawn": spawn,
    "pingpong": pingpong,
    "pipe": pipe,
    "sieve": sieve,
    "sleepers": sleepers,
    "timers": timers,
    "mutex": mutex,
    "mutex_contended": mutex_contended,
    "waitgroup": waitgroup,
    "ctxcancel": ctxcancel,
}


def measure(name: str, n: int, warmup: int, procs: int | None) -> Measured:
    return timed(WORKLOADS[name], n, warmup)
