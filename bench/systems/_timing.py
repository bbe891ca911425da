"""Timing helpers shared by the system modules: warm up once, then time one run."""

from __future__ import annotations

import gc
import time
from collections.abc import Awaitable, Callable

Measured = tuple[int, float]


def timed(fn: Callable[[int], int], n: int, warmup: int) -> Measured:
    """Run ``fn(warmup)``, then time ``fn(n)``; the caller's runtime is already up."""
    fn(warmup)
    gc.collect()
    start = time.perf_counter()
    value = fn(n)
    return value, time.perf_counter() - start


async def timed_async(fn: Callable[[int], Awaitable[int]], n: int, warmup: int) -> Measured:
    """The async twin of :func:`timed`, run inside the event loop."""
    await fn(warmup)
    gc.collect()
    start = time.perf_counter()
    value = await fn(n)
    return value, time.perf_counter() - start
