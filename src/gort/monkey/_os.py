"""Patched ``os.read`` and ``os.write``: on a goroutine, a blocking
descriptor that is not ready (a pipe, a tty, a socket) parks the goroutine
on the run's poller until it is, then the original call runs and returns
at once.

The descriptor's mode is never changed: a pipe is usually shared with a
child process, which must keep its blocking end. Instead the kernel is
asked without waiting (poll(2), timeout 0) whether the call can proceed:
a regular file always can (the kernel never reports it not ready), so
regular files run the original call with no park, as in Go, whose poller
refuses them too. A non-blocking descriptor also runs the original call
directly: its caller asked for ``BlockingIOError``.

A write larger than ``select.PIPE_BUF`` to a blocking descriptor goes out
in pieces of at most PIPE_BUF bytes, each after the descriptor reports
writable (POSIX promises that much room then), so the M never blocks on
a full pipe; it returns when all is written, as a blocking write does, or
with the count written so far when an error ends it part-way (as the
kernel's write does).
"""

from __future__ import annotations

import os as _os_mod
import select as _select_mod
from typing import Any

from ..runtime.netpoll import READ, WRITE, level_ready, poll_wait_any
from ._core import _originals, in_goroutine

_orig_read = _os_mod.read
_orig_write = _os_mod.write
_PIPE_BUF: int = getattr(_select_mod, "PIPE_BUF", 512)


def _await(fd: int, mode: int, call: str) -> None:
    """Park until fd is ready for mode (at once if it is)."""
    pairs = ((fd, mode),)
    while not level_ready({fd: 1 << mode}):
        try:
            poll_wait_any(pairs, None, call)
        except OSError:
            return  # the poller refuses it (EPERM): let the original call decide


def _read(fd: int, n: int, /) -> bytes:
    if in_goroutine() and _os_mod.get_blocking(fd):
        _await(fd, READ, "os.read")
    return _orig_read(fd, n)


def _write(fd: int, data: Any, /) -> int:
    if not in_goroutine() or not _os_mod.get_blocking(fd):
        return _orig_write(fd, data)
    view = memoryview(data).cast("B")
    if len(view) <= _PIPE_BUF:
        _await(fd, WRITE, "os.write")
        return _orig_write(fd, view)
    n = 0
    while n < len(view):
        _await(fd, WRITE, "os.write")
        try:
            n += _orig_write(fd, view[n : n + _PIPE_BUF])
        except OSError:
            if n:
                return n
            raise
    return n


def patch_os() -> bool:
    """os.read and os.write park the goroutine on a descriptor not ready."""
    if "os" in _originals:
        return False
    _originals["os"] = {"read": _orig_read, "write": _orig_write}
    _os_mod.read = _read
    _os_mod.write = _write
    return True
