"""gort: Go's runtime rebuilt for Python.

Goroutines on greenlets, scheduled by a G/M/P scheduler modelled on Go's,
with channels, select, timers and Go's runtime services. The public API is
this module; ``gort.runtime`` holds the implementation, file by file after
Go's ``src/runtime``.
"""

from __future__ import annotations

from . import net, synctest, tls, trace
from . import signal as signal  # gort.signal: Go's os/signal
from .context import (
    Canceled,
    Context,
    DeadlineExceeded,
    background,
    cause,
    context_after_func,
    todo,
    with_cancel,
    with_cancel_cause,
    with_deadline,
    with_deadline_cause,
    with_timeout,
    with_timeout_cause,
    with_value,
    without_cancel,
)
from .errgroup import Group
from .runtime.chan import Chan, nilchan
from .runtime.goroutineleak import leaks
from .runtime.malloc import Buffer, alloc
from .runtime.mstats import BySize, MemStats
from .runtime.mstats import read_mem_stats as mem_stats
from .runtime.panic import Deadlock, Fatal, Panic
from .runtime.proc import goexit, goid, gomaxprocs, gosched, init, num_goroutine
from .runtime.proc import newproc as go
from .runtime.select import default, select
from .runtime.startup import run
from .runtime.syscall import syscall
from .runtime.traceback import stack
from .sleep import Ticker, Timer, after, after_func, now, sleep
from .sync import (
    Cond,
    Locker,
    Mutex,
    Once,
    Pool,
    RLocker,
    RWMutex,
    Semaphore,
    WaitGroup,
    once_func,
    once_value,
)

chan = Chan

__all__ = [
    "Buffer",
    "BySize",
    "Canceled",
    "Chan",
    "Cond",
    "Context",
    "DeadlineExceeded",
    "Deadlock",
    "Fatal",
    "Group",
    "Locker",
    "MemStats",
    "Mutex",
    "Once",
    "Panic",
    "Pool",
    "RLocker",
    "RWMutex",
    "Semaphore",
    "Ticker",
    "Timer",
    "WaitGroup",
    "after",
    "after_func",
    "alloc",
    "background",
    "cause",
    "chan",
    "context_after_func",
    "default",
    "go",
    "goexit",
    "goid",
    "gomaxprocs",
    "gosched",
    "init",
    "leaks",
    "mem_stats",
    "net",
    "nilchan",
    "now",
    "num_goroutine",
    "once_func",
    "once_value",
    "run",
    "select",
    "sleep",
    "stack",
    "synctest",
    "syscall",
    "tls",
    "todo",
    "trace",
    "with_cancel",
    "with_cancel_cause",
    "with_deadline",
    "with_deadline_cause",
    "with_timeout",
    "with_timeout_cause",
    "with_value",
    "without_cancel",
]

__version__ = "0.1.0"
