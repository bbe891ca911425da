"""asyncio on its default loop: create_task + gather, asyncio.Queue, call_later.

asyncio has no unbuffered channel; Queue(maxsize=1) is the closest, and Queue has no close
in Python 3.11, so a None sentinel ends a stream. uvloop_sys reuses these coroutines.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from spec import PIPE_CAPACITY, SLEEP_SECONDS, TIMER_SECONDS
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


WORKLOADS: dict[str, AsyncWorkload] = {
    "spawn": spawn,
    "pingpong": pingpong,
    "pipe": pipe,
    "sieve": sieve,
    "sleepers": sleepers,
    "timers": timers,
}


def measure(name: str, n: int, warmup: int, procs: int | None) -> Measured:
    return asyncio.run(timed_async(WORKLOADS[name], n, warmup))
