"""trio: nurseries, memory channels (size 0 is unbuffered), cancel scopes as timers."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, TypeAlias

import trio

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
Sender: TypeAlias = "trio.MemorySendChannel[int]"
Receiver: TypeAlias = "trio.MemoryReceiveChannel[int]"


async def _report(i: int, out: list[int]) -> None:
    out.append(i)


async def spawn(n: int) -> int:
    out: list[int] = []
    async with trio.open_nursery() as nursery:
        for i in range(n):
            nursery.start_soon(_report, i, out)
    return sum(out)


async def _echo(ping: Receiver, pong: Sender) -> None:
    async with ping, pong:
        async for v in ping:
            await pong.send(v + 1)


async def pingpong(n: int) -> int:
    ping_send, ping_recv = trio.open_memory_channel(0)
    pong_send, pong_recv = trio.open_memory_channel(0)
    total = 0
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_echo, ping_recv, pong_send)
        async with ping_send:
            for i in range(n):
                await ping_send.send(i)
                total += await pong_recv.receive()
    return total


async def _produce(out: Sender, n: int) -> None:
    async with out:
        for i in range(n):
            await out.send(i)


async def pipe(n: int) -> int:
    send, recv = trio.open_memory_channel(PIPE_CAPACITY)
    total = 0
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_produce, send, n)
        async for v in recv:
            total += v
    return total


async def _generate(out: Sender) -> None:
    i = 2
    while True:
        await out.send(i)
        i += 1


async def _filter(src: Receiver, dst: Sender, prime: int) -> None:
    async for v in src:
        if v % prime:
            await dst.send(v)


async def sieve(n: int) -> int:
    prime = 0
    async with trio.open_nursery() as nursery:
        send, ch = trio.open_memory_channel(0)
        nursery.start_soon(_generate, send)
        for _ in range(n):
            prime = await ch.receive()
            send, out = trio.open_memory_channel(0)
            nursery.start_soon(_filter, ch, send, prime)
            ch = out
        # Structured concurrency cannot abandon the chain as Go does: cancel it.
        nursery.cancel_scope.cancel()
    return prime


async def _sleeper(i: int, out: list[int]) -> None:
    await trio.sleep(SLEEP_SECONDS)
    out.append(i)


async def sleepers(n: int) -> int:
    out: list[int] = []
    async with trio.open_nursery() as nursery:
        for i in range(n):
            nursery.start_soon(_sleeper, i, out)
    return sum(out)


async def timers(n: int) -> int:
    """trio's timer is a cancel scope with a deadline: entering registers the deadline,
    leaving unregisters it."""
    stopped = 0
    for _ in range(n):
        with trio.move_on_after(TIMER_SECONDS) as scope:
            pass
        stopped += not scope.cancel_called
    return stopped


async def mutex(n: int) -> int:
    lock = trio.Lock()
    count = 0
    for _ in range(n):
        async with lock:
            count += 1
    return count


async def _contend(lock: trio.Lock, box: list[int], k: int) -> None:
    for i in range(k):
        async with lock:
            box[0] += 1
            if i % YIELD_EVERY == 0:
                await trio.sleep(0)


async def mutex_contended(n: int) -> int:
    lock = trio.Lock()
    box = [0]
    async with trio.open_nursery() as nursery:
        for _ in range(CONTENDERS):
            nursery.start_soon(_contend, lock, box, n // CONTENDERS)
    return box[0]


async def _done(box: list[int]) -> None:
    box[0] += 1


async def waitgroup(n: int) -> int:
    box = [0]
    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(_done, box)
    return box[0]


async def _node(i: int, n: int, box: list[int], started: list[int], all_in: trio.Event) -> None:
    """A task of the tree: its children in a nursery, then wait to be cancelled."""
    try:
        async with trio.open_nursery() as nursery:
            first = i * CTX_FANOUT + 1
            for c in range(first, min(first + CTX_FANOUT, n + 1)):
                nursery.start_soon(_node, c, n, box, started, all_in)
            started[0] += 1
            if started[0] == n + 1:
                all_in.set()
            await trio.sleep_forever()
    finally:
        if i:
            box[0] += 1


async def ctxcancel(n: int) -> int:
    box, started, all_in = [0], [0], trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_node, 0, n, box, started, all_in)
        await all_in.wait()
        nursery.cancel_scope.cancel()
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
    result: Measured = trio.run(timed_async, WORKLOADS[name], n, warmup)
    return result
