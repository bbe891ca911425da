"""The asyncio programs of asyncio_sys, unchanged, on uvloop's event loop."""

from __future__ import annotations

import uvloop

from systems._timing import Measured, timed_async
from systems.asyncio_sys import WORKLOADS


def measure(name: str, n: int, warmup: int, procs: int | None) -> Measured:
    return uvloop.run(timed_async(WORKLOADS[name], n, warmup))


__all__ = ["WORKLOADS", "measure"]
