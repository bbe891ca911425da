"""asyncio on its default loop: create_task + gather, asyncio.Queue, call_later.

asyncio has no unbuffered channel; Queue(maxsize=1) is the closest, and Queue has no close
in Python 3.11, so a None sentinel ends a stream. uvloop_sys reuses these coroutines.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from spec import (
    CONTENDERS,
    CTX_FANOUT,
    PIPE_CAPACITY,
    SLEEP_SECONDS,
    TIMER_SECONDS,
    YIELD_EVERY,
)
from systems._timing import Measured, timed_async

AsyncWorkload = Callable[[int], Coroutine[Any, Any, int]]

# Tasks that are never awaited (the sieve's chain) are kept here: asyncio holds only weak
# references to tasks, and a pending task that is collected logs an error.
_abandoned: list[asyncio.Task[None]] = []


async def _report(i: int) -> int:
    return i


async def spawn(n: int) -> int:
    tasks = [asyncio.create_task(_report(i)) for i in range(n)]
    return sum(await asyncio.gather(*tasks))


async def _echo(ping: asyncio.Queue[int | None], pong: asyncio.Queue[int]) -> None:
    while (v := await ping.get()) is not None:
        await pong.put(v + 1)


async def pingpong(n: int) -> int:
    ping: asyncio.Queue[int | None] = asyncio.Queue(maxsize=1)
    pong: asyncio.Queue[int] = asyncio.Queue(maxsize=1)
    echo = asyncio.create_task(_echo(ping, pong))
    total = 0
    for i in range(n):
        await ping.put(i)
        total += await pong.get()
    await ping.put(None)
    await echo
    return total


async def _produce(q: asyncio.Queue[int | None], n: int) -> None:
    for i in range(n):
        await q.put(i)
    await q.put(None)


async def pipe(n: int) -> int:
    q: asyncio.Queue[int | None] = asyncio.Queue(maxsize=PIPE_CAPACITY)
    producer = asyncio.create_task(_produce(q, n))
    total = 0
    while (v := await q.get()) is not None:
        total += v
    await producer
    return total


async def _generate(out: asyncio.Queue[int]) -> None:
    i = 2
    while True:
        await out.put(i)
        i += 1


async def _filter(src: asyncio.Queue[int], dst: asyncio.Queue[int], prime: int) -> None:
    while True:
        v = await src.get()
        if v % prime:
            await dst.put(v)


async def sieve(n: int) -> int:
    ch: asyncio.Queue[int] = asyncio.Queue(maxsize=1)
    _abandoned.append(asyncio.create_task(_generate(ch)))
    prime = 0
    for _ in range(n):
        prime = await ch.get()
        out: asyncio.Queue[int] = asyncio.Queue(maxsize=1)
        _abandoned.append(asyncio.create_task(_filter(ch, out, prime)))
        ch = out
    return prime  # the chain is left pending; asyncio.run cancels it after timing


async def _sleeper(i: int) -> int:
    await asyncio.sleep(SLEEP_SECONDS)
    return i


async def sleepers(n: int) -> int:
    tasks = [asyncio.create_task(_sleeper(i)) for i in range(n)]
    return sum(await asyncio.gather(*tasks))


def _never() -> None:
    raise AssertionError("a cancelled timer fired")


async def timers(n: int) -> int:
    loop = asyncio.get_running_loop()
    stopped = 0
    for _ in range(n):
        handle = loop.call_later(TIMER_SECONDS, _never)
        handle.cancel()
        stopped += handle.cancelled()
    return stopped


async def mutex(n: int) -> int:
    lock = asyncio.Lock()
    count = 0
    for _ in range(n):
        async with lock:
            count += 1
    return count


async def _contend(lock: asyncio.Lock, box: list[int], k: int) -> None:
    for i in range(k):
        async with lock:
            box[0] += 1
            if i % YIELD_EVERY == 0:
                await asyncio.sleep(0)


async def mutex_contended(n: int) -> int:
    lock = asyncio.Lock()
    box = [0]
    await asyncio.gather(*(_contend(lock, box, n // CONTENDERS) for _ in range(CONTENDERS)))
    return box[0]


async def _done(box: list[int]) -> None:
    box[0] += 1


async def waitgroup(n: int) -> int:
    box = [0]
    async with asyncio.TaskGroup() as tg:
        for _ in range(n):
            tg.create_task(_done(box))
    return box[0]


async def _node(i: int, n: int, box: list[int], started: list[int], all_in: asyncio.Event) -> None:
    """A task of the tree: its children in a TaskGroup, then wait to be cancelled."""
    try:
        async with asyncio.TaskGroup() as tg:
            first = i * CTX_FANOUT + 1
            for c in range(first, min(first + CTX_FANOUT, n + 1)):
                tg.create_task(_node(c, n, box, started, all_in))
            started[0] += 1
            if started[0] == n + 1:
                all_in.set()
            await asyncio.Future()
    finally:
        if i:
            box[0] += 1


async def ctxcancel(n: int) -> int:
    box, started, all_in = [0], [0], asyncio.Event()
    root = asyncio.create_task(_node(0, n, box, started, all_in))
    await all_in.wait()
    root.cancel()
    try:
        await root
    except asyncio.CancelledError:
        pass
    return box[0]


WORKLOADS: dict[str, AsyncWorkload] = {
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
    return asyncio.run(timed_async(WORKLOADS[name], n, warmup))
