"""gort, written as the Go programs would be: go statements, channels, range over a channel.

Everything runs inside ``gort.run``; the timed part starts once the runtime is up.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

try:
    import gort
except ModuleNotFoundError:  # not installed: fall back to the checkout this file lives in
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
    import gort

from spec import (
    CONTENDERS,
    CTX_FANOUT,
    PIPE_CAPACITY,
    SLEEP_SECONDS,
    TIMER_SECONDS,
    YIELD_EVERY,
)
from systems._timing import Measured, timed

_details: dict[str, Any] = {}


def _report(done: Any, i: int) -> None:
    done.send(i)


def spawn(n: int) -> int:
    done = gort.chan(n)
    for i in range(n):
        gort.go(_report, done, i)
    total = 0
    for _ in range(n):
        total += done.recv()
    return total


def _echo(ping: Any, pong: Any) -> None:
    for v in ping:
        pong.send(v + 1)


def pingpong(n: int) -> int:
    ping, pong = gort.chan(), gort.chan()
    gort.go(_echo, ping, pong)
    total = 0
    for i in range(n):
        ping.send(i)
        total += pong.recv()
    ping.close()
    return total


def _produce(ch: Any, n: int) -> None:
    for i in range(n):
        ch.send(i)
    ch.close()


def pipe(n: int) -> int:
    ch = gort.chan(PIPE_CAPACITY)
    gort.go(_produce, ch, n)
    total = 0
    for v in ch:
        total += v
    return total


def _generate(out: Any) -> None:
    i = 2
    while True:
        out.send(i)
        i += 1


def _filter(src: Any, dst: Any, prime: int) -> None:
    for v in src:
        if v % prime:
            dst.send(v)


def sieve(n: int) -> int:
    ch = gort.chan()
    gort.go(_generate, ch)
    prime = 0
    for _ in range(n):
        prime = ch.recv()
        out = gort.chan()
        gort.go(_filter, ch, out, prime)
        ch = out
    return prime  # the chain is abandoned, as in Go


def _sleeper(done: Any, i: int) -> None:
    gort.sleep(SLEEP_SECONDS)
    done.send(i)


def sleepers(n: int) -> int:
    done = gort.chan(n)
    for i in range(n):
        gort.go(_sleeper, done, i)
    total = 0
    for _ in range(n):
        total += done.recv()
    return total


def timers(n: int) -> int:
    stopped = 0
    for _ in range(n):
        stopped += gort.Timer(TIMER_SECONDS).stop()
    return stopped


def mutex(n: int) -> int:
    mu = gort.Mutex()
    count = 0
    for _ in range(n):
        with mu:
            count += 1
    return count


def _contend(mu: Any, box: list[int], k: int, wg: Any) -> None:
    for i in range(k):
        with mu:
            box[0] += 1
            if i % YIELD_EVERY == 0:
                gort.gosched()
    wg.done()


def mutex_contended(n: int) -> int:
    mu = gort.Mutex()
    box = [0]
    wg = gort.WaitGroup()
    wg.add(CONTENDERS)
    for _ in range(CONTENDERS):
        gort.go(_contend, mu, box, n // CONTENDERS, wg)
    wg.wait()
    return box[0]


def _done(wg: Any, box: list[int]) -> None:
    box[0] += 1
    wg.done()


def waitgroup(n: int) -> int:
    wg = gort.WaitGroup()
    box = [0]
    wg.add(n)
    for _ in range(n):
        gort.go(_done, wg, box)
    wg.wait()
    return box[0]


def _watch(ctx: Any, wg: Any, box: list[int]) -> None:
    ctx.done().recv()
    box[0] += 1
    wg.done()


def ctxcancel(n: int) -> int:
    root, cancel = gort.with_cancel(gort.background())
    nodes = [root]
    wg = gort.WaitGroup()
    box = [0]
    wg.add(n)
    for i in range(n):  # node i + 1 is a child of node i // CTX_FANOUT
        ctx, _ = gort.with_cancel(nodes[i // CTX_FANOUT])
        nodes.append(ctx)
        gort.go(_watch, ctx, wg, box)
    gort.gosched()  # every watcher is waiting
    cancel()
    wg.wait()
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


def _main(name: str, n: int, warmup: int) -> Measured:
    _details["gomaxprocs"] = gort.gomaxprocs()
    _details["gort_path"] = str(Path(gort.__file__).parent)
    return timed(WORKLOADS[name], n, warmup)


def measure(name: str, n: int, warmup: int, procs: int | None) -> Measured:
    result: Measured = gort.run(_main, name, n, warmup, procs=procs)
    return result


def details() -> dict[str, Any]:
    """Facts learnt inside the run, for the runner's report."""
    return dict(_details)
