"""Blocking calls with gort.syscall, while a ticker keeps running.

A goroutine that calls a blocking function directly (``time.sleep``, a read
from a pipe or a socket, a database driver) holds its processor for the whole
call: no other goroutine of that P runs, timers of that P do not fire, and
after 100 ms the runtime prints a warning naming the call. ``gort.syscall``
runs the call on a helper thread instead; the calling goroutine waits in
state ``syscall`` and every other goroutine goes on.

This program runs a ticker goroutine and, meanwhile, makes two blocking
calls through ``gort.syscall``: ``time.sleep`` and ``os.read`` on a pipe
that another goroutine writes to later. The ticker keeps ticking through
both.

Run it with ``python -m gort examples/blocking.py``.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from typing import Any

import gort


def count_ticks(period: float, stop: gort.Chan, result: gort.Chan) -> None:
    """Count ticks until stop is closed, then send the count on result."""
    ticker = gort.Ticker(period)
    ticks = 0
    while True:
        i, _ = gort.select(ticker.c.recv, stop.recv)
        if i == 1:
            ticker.stop()
            result.send(ticks)
            return
        ticks += 1


def ticks_during(call: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Run fn(*args) through gort.syscall and report how often a ticker ticked meanwhile."""
    stop, result = gort.chan(), gort.chan()
    gort.go(count_ticks, 0.01, stop, result)
    value = gort.syscall(fn, *args)  # this goroutine waits; the ticker runs
    stop.close()
    print(f"{call}: the ticker ticked {result.recv()} times meanwhile")
    return value


def write_later(fd: int, delay: float, data: bytes) -> None:
    """Write data to fd after delay seconds, then close it."""
    gort.sleep(delay)
    os.write(fd, data)  # a small write to a pipe does not block
    os.close(fd)


def main() -> None:
    # 1. A plain blocking sleep on a helper thread.
    ticks_during("time.sleep(0.2)", time.sleep, 0.2)

    # 2. A blocking read: os.read waits until the writer goroutine, which
    # runs on this same processor, writes 0.2 s from now. Called directly,
    # os.read would hold the processor, the writer could never run, and the
    # program would hang.
    r, w = os.pipe()
    gort.go(write_later, w, 0.2, b"hello through a pipe")
    data = ticks_during("os.read(pipe)", os.read, r, 1024)
    os.close(r)
    print(f"read {data!r}")

    # 3. Exceptions come back unchanged: the call failed on the helper
    # thread, and the OSError is raised here, in the calling goroutine.
    try:
        gort.syscall(os.read, r, 1)  # r is closed now
    except OSError as e:
        name = errno.errorcode.get(e.errno or 0, "?")
        print(f"os.read on a closed descriptor: {type(e).__name__} {name}")


if __name__ == "__main__":
    gort.run(main)
