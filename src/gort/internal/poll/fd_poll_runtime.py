"""The bridge from FD to the runtime's poller (fd_poll_runtime.go).

Turns the poller's error codes into exceptions (Go's convertErr) and names
the calls a goroutine-less caller is told about.
"""

from __future__ import annotations

from ...runtime.netpoll import (
    POLL_ERR_CLOSING,
    READ,
    WRITE,
    PollDesc,
    poll_close,
    poll_evict,
    poll_open,
    poll_set_deadline,
    poll_wait,
)
from .fd import ErrClosed, Timeout

__all__ = [
    "READ",
    "WRITE",
    "PollDesc",
    "convert_err",
    "poll_close",
    "poll_evict",
    "poll_open",
    "poll_set_deadline",
    "wait_read",
    "wait_write",
]


def convert_err(code: int) -> OSError:
    """The exception for a poller error code (convertErr)."""
    if code == POLL_ERR_CLOSING:
        return ErrClosed()
    return Timeout()


def wait_read(pd: PollDesc, call: str) -> None:
    """Park until pd may be readable; raise ErrClosed or Timeout instead."""
    err = poll_wait(pd, READ, call)
    if err:
        raise convert_err(err)


def wait_write(pd: PollDesc, call: str) -> None:
    err = poll_wait(pd, WRITE, call)
    if err:
        raise convert_err(err)
