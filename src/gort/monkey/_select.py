"""Patched ``select`` and ``selectors``: every wait parks the goroutine on
the run's poller (runtime/netpoll.py ``poll_wait_any``), never a second
I/O loop.

Each wait is a loop: ask the original object without waiting (timeout 0),
return what it says if anything is ready, else park until one of the
descriptors may be ready or the deadline passes, and ask again. The
answer is therefore always the original's, in its order and words; the
poller only decides when to ask. An ``epoll`` object is waited on through
its own descriptor, which is readable while the object has events ready,
so edge-triggered and one-shot registrations keep their meaning.

Outside a goroutine every call is the original's. Where the poller refuses
a descriptor, or ``select.select`` is asked about exceptional conditions
(the poller does not watch for out-of-band data), the original call runs
on a syscall helper M instead.
"""

from __future__ import annotations

import operator
import select as _select_mod
import selectors as _selectors_mod
from time import monotonic
from typing import Any

from ..runtime import netpoll_selectors as _netpoll_selectors  # noqa: F401  (binds its selector first)
from ..runtime.netpoll import READ, WRITE, poll_wait_any
from ..runtime.syscall import syscall
from ._core import _originals, in_goroutine

_orig_select = _select_mod.select
_orig_poll = getattr(_select_mod, "poll", None)
_orig_epoll = getattr(_select_mod, "epoll", None)

_POLL_READ = sum(
    getattr(_select_mod, n, 0) for n in ("POLLIN", "POLLPRI", "POLLRDNORM", "POLLRDBAND")
)
_POLL_WRITE = sum(getattr(_select_mod, n, 0) for n in ("POLLOUT", "POLLWRNORM", "POLLWRBAND"))
_POLL_DEFAULT = sum(getattr(_select_mod, n, 0) for n in ("POLLIN", "POLLPRI", "POLLOUT"))


def _fileno(obj: Any) -> int:
    """The descriptor of a select argument (validated by the original already)."""
    return obj if isinstance(obj, int) else int(obj.fileno())


def _seconds(timeout: Any, scale: float, what: str) -> float | None:
    """timeout (in 1/scale seconds) as seconds, None for no limit; the
    original's TypeError/ValueError for what it rejects."""
    if timeout is None:
        return None
    if isinstance(timeout, float):
        if timeout != timeout:
            raise ValueError("Invalid value NaN (not a number)")
        return timeout / scale
    try:
        return operator.index(timeout) / scale
    except TypeError:
        raise TypeError(f"timeout must be {what} or None") from None


def _deadline(secs: float | None) -> float | None:
    return None if secs is None else monotonic() + secs


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - monotonic())


# -- select.select ---------------------------------------------------------


def _select(rlist: Any, wlist: Any, xlist: Any, timeout: Any = None) -> Any:
    if not in_goroutine() or timeout == 0:
        return _orig_select(rlist, wlist, xlist, timeout)
    secs = _seconds(timeout, 1.0, "a float")
    if secs is not None and secs < 0:
        raise ValueError("timeout must be non-negative")
    ready = _orig_select(rlist, wlist, xlist, 0)
    if any(ready):
        return ready
    deadline = _deadline(secs)
    pairs = [(_fileno(o), READ) for o in rlist] + [(_fileno(o), WRITE) for o in wlist]
    if xlist:
        return syscall(_orig_select, rlist, wlist, xlist, _remaining(deadline))
    while True:
        try:
            if not poll_wait_any(pairs, deadline, "select.select"):
                return ([], [], [])
        except OSError:  # a descriptor the poller refuses
            return syscall(_orig_select, rlist, wlist, xlist, _remaining(deadline))
        ready = _orig_select(rlist, wlist, xlist, 0)
        if any(ready):
            return ready


# -- select.poll -----------------------------------------------------------


class _Poll:
    """select.poll(): the original object, its waits parking the goroutine.

    ``_masks`` mirrors the registrations (fd -> event mask), as the C
    object keeps them private; the goroutine using the object writes it.
    """

    __slots__ = ("_masks", "_po", "_running")

    def __init__(self) -> None:
        self._po = _orig_poll()  # type: ignore[misc]
        self._masks: dict[int, int] = {}
        self._running = False

    def register(self, fd: Any, eventmask: int = _POLL_DEFAULT) -> None:
        self._po.register(fd, eventmask)
        self._masks[_fileno(fd)] = eventmask

    def modify(self, fd: Any, eventmask: int) -> None:
        self._po.modify(fd, eventmask)
        self._masks[_fileno(fd)] = eventmask

    def unregister(self, fd: Any) -> None:
        self._po.unregister(fd)
        del self._masks[_fileno(fd)]

    def poll(self, timeout: Any = None) -> list[tuple[int, int]]:
        if not in_goroutine():
            return self._po.poll(timeout)  # type: ignore[no-any-return]
        secs = _seconds(timeout, 1000.0, "an integer")
        if self._running:
            raise RuntimeError("concurrent poll() invocation")
        ready: list[tuple[int, int]] = self._po.poll(0)
        if ready or secs == 0:
            return ready
        self._running = True
        try:
            return self._wait(_deadline(None if secs is None or secs < 0 else secs))
        finally:
            self._running = False

    def _wait(self, deadline: float | None) -> list[tuple[int, int]]:
        pairs = [
            (fd, mode)
            for fd, mask in self._masks.items()
            for mode in _modes(mask, _POLL_READ, _POLL_WRITE)
        ]
        while True:
            try:
                if not poll_wait_any(pairs, deadline, "poll.poll"):
                    return []
            except OSError:
                left = _remaining(deadline)
                return syscall(self._po.poll, None if left is None else left * 1000.0)  # type: ignore[no-any-return]
            ready: list[tuple[int, int]] = self._po.poll(0)
            if ready:
                return ready


def _modes(mask: int, rbits: int, wbits: int) -> tuple[int, ...]:
    """The poller directions for an event mask; errors and hang-ups, which
    every registration reports, wake readers."""
    if mask & wbits:
        return (READ, WRITE) if mask & rbits else (WRITE,)
    return (READ,)


# -- select.epoll ----------------------------------------------------------


class _Epoll:
    """select.epoll (not subclassable in C): the original object, its
    ``poll`` parking the goroutine until the object's own descriptor is
    readable, which it is while events are ready."""

    __slots__ = ("__weakref__", "_ep")

    def __init__(self, sizehint: int = -1, flags: int = 0) -> None:
        self._ep = _orig_epoll(sizehint, flags)  # type: ignore[misc]

    @classmethod
    def fromfd(cls, fd: int) -> _Epoll:
        obj = cls.__new__(cls)
        obj._ep = _orig_epoll.fromfd(fd)  # type: ignore[union-attr]
        return obj

    @property
    def closed(self) -> bool:
        return bool(self._ep.closed)

    def close(self) -> None:
        self._ep.close()

    def fileno(self) -> int:
        return int(self._ep.fileno())

    def register(self, fd: Any, *eventmask: int) -> None:
        self._ep.register(fd, *eventmask)

    def modify(self, fd: Any, eventmask: int) -> None:
        self._ep.modify(fd, eventmask)

    def unregister(self, fd: Any) -> None:
        self._ep.unregister(fd)

    def __enter__(self) -> _Epoll:
        self._ep.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._ep.__exit__(*exc)

    def poll(self, timeout: Any = None, maxevents: int = -1) -> list[tuple[int, int]]:
        ep = self._ep
        if not in_goroutine():
            return ep.poll(timeout, maxevents)  # type: ignore[no-any-return]
        secs = _seconds(timeout, 1.0, "an integer")
        ready: list[tuple[int, int]] = ep.poll(0, maxevents)
        if ready or secs == 0:
            return ready
        deadline = _deadline(None if secs is None or secs < 0 else secs)
        pairs = [(ep.fileno(), READ)]
        while True:
            if not poll_wait_any(pairs, deadline, "epoll.poll"):
                return []
            ready = ep.poll(0, maxevents)
            if ready:
                return ready


# -- patching --------------------------------------------------------------


def patch_select() -> bool:
    """select.select, select.poll and select.epoll wait on the run's poller."""
    if "select" in _originals:
        return False
    saved: dict[str, Any] = {"select": _orig_select}
    _select_mod.select = _select
    if _orig_poll is not None:
        saved["poll"] = _orig_poll
        _select_mod.poll = _Poll  # type: ignore[misc,assignment]
    if _orig_epoll is not None:
        saved["epoll"] = _orig_epoll
        _select_mod.epoll = _Epoll  # type: ignore[misc,assignment]
    _originals["select"] = saved
    return True


# The selectors classes bind what they wait with at import (class attributes).
_SELECTOR_CLASSES = (
    ("SelectSelector", "_select", staticmethod(_select)),
    ("PollSelector", "_selector_cls", _Poll),
    ("EpollSelector", "_selector_cls", _Epoll),
)


def patch_selectors() -> bool:
    """selectors' SelectSelector, PollSelector and EpollSelector (so
    DefaultSelector, and what the standard library builds on them) wait on
    the run's poller."""
    if "selectors" in _originals:
        return False
    saved: dict[str, Any] = {}
    for cls_name, attr, new in _SELECTOR_CLASSES:
        cls = getattr(_selectors_mod, cls_name, None)
        if cls is None or attr not in vars(cls):
            continue  # not on this platform
        saved[cls_name] = vars(cls)[attr]
        setattr(cls, attr, new)
    _originals["selectors"] = saved
    return True
