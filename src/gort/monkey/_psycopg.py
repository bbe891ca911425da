"""psycopg 3's waits on the run's poller.

psycopg runs every libpq operation as a generator that yields what it
waits for (``Wait.R``/``W``/``RW``; with the descriptor, ``(fd, Wait)``,
while connecting) and is sent what became ready. ``psycopg.waiting.wait``
and ``wait_conn`` drive those generators; the default one is ``wait_c``,
C code calling poll(2) directly, which no socket patch reaches. So the
patch replaces both functions (the connection looks them up on the module
at every call) with ones that, on a goroutine, park in ``IO wait`` on the
run's poller (``poll_wait_any``: for one direction or both, the descriptor
registered for the park) and elsewhere run the original.

libpq may stop reading with data still queued in the kernel, so the Ready
mask psycopg is sent comes from a zero-timeout poll(2) of the descriptor
(its level), taken before each park and after each wake-up.

psycopg is never imported by the patch: if ``psycopg.waiting`` is not
loaded yet, an import hook applies the patch when it is.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import select as _select_mod
import sys
from collections.abc import Generator, Sequence
from time import monotonic
from types import ModuleType
from typing import Any

from ..runtime.netpoll import READ, WRITE, poll_wait_any
from ..runtime.syscall import syscall
from ._core import _originals, in_goroutine

# Captured when gort.monkey is imported, before any patch of select runs:
# the level check must not park.
_poll = _select_mod.poll
# psycopg's Wait and Ready values (psycopg._enums), fixed by its protocol.
_WAIT_R, _WAIT_W = 1, 2
_READY_R, _READY_W = 1, 2
_POLL_EV = {
    1: _select_mod.POLLIN,
    2: _select_mod.POLLOUT,
    3: _select_mod.POLLIN | _select_mod.POLLOUT,
}
# The poller's (mode, ...) for each Wait mask.
_MODES = {1: (READ,), 2: (WRITE,), 3: (READ, WRITE)}


def _level(fd: int, s: int) -> int:
    """The Ready mask of fd for the Wait mask s right now (poll(2), no wait)."""
    p = _poll()
    p.register(fd, _POLL_EV[s])
    ready = 0
    for _, ev in p.poll(0):
        if ev & _select_mod.POLLNVAL:
            raise OSError(9, "connection socket closed")
        if ev & _select_mod.POLLIN:
            ready |= _READY_R
        if ev & _select_mod.POLLOUT:
            ready |= _READY_W
        if ev & (_select_mod.POLLERR | _select_mod.POLLHUP):
            ready |= s  # libpq finds the error when it reads or writes
    return ready


class _Refused(Exception):
    """The poller refuses the descriptor."""


def _ready(fd: int, s: int, deadline: float | None) -> int:
    """Park until fd is ready for the Wait mask s; its Ready mask, or 0 once
    the deadline passed (psycopg then raises its own timeout)."""
    pairs = [(fd, mode) for mode in _MODES[s]]
    while True:
        ready = _level(fd, s)
        if ready:
            return ready
        try:
            if not poll_wait_any(pairs, deadline, "psycopg.wait"):
                return 0
        except OSError as e:
            raise _Refused from e


def _timed_out(deadline: float | None) -> None:
    if deadline is not None and monotonic() >= deadline:
        raise sys.modules["psycopg.errors"]._WaitTimeout("wait timeout expired")


def _closed(ex: OSError) -> BaseException:
    err = sys.modules["psycopg.errors"].OperationalError("connection socket closed")
    err.__cause__ = ex
    return err  # type: ignore[no-any-return]


def wait(
    gen: Generator[int, int, Any], fileno: int, interval: float = 0.0, timeout: float | None = None
) -> Any:
    """psycopg.waiting.wait: drive gen, parking on fileno while it waits."""
    if not in_goroutine():
        return _originals["psycopg"]["wait"](gen, fileno, interval, timeout)
    return _drive(gen, fileno, interval, timeout)


def wait_conn(
    gen: Generator[tuple[int, int], int, Any], interval: float = 0.0, timeout: float | None = None
) -> Any:
    """psycopg.waiting.wait_conn: as wait, the descriptor coming from gen."""
    if not in_goroutine():
        return _originals["psycopg"]["wait_conn"](gen, interval, timeout)
    return _drive(gen, None, interval, timeout)


def _drive(
    gen: Generator[Any, int, Any], fileno: int | None, interval: float, timeout: float | None
) -> Any:
    """Run gen to its end, parking while it waits: gen yields Wait masks
    for fileno, or (fd, Wait) pairs when fileno is None (wait_conn)."""
    if interval is None:
        raise ValueError("indefinite wait not supported anymore")
    deadline = None if timeout is None else monotonic() + timeout
    try:
        item = next(gen)
        while True:
            fd, s = item if fileno is None else (fileno, item)
            try:
                ready = _ready(fd, s, deadline)
            except _Refused:  # a descriptor the poller refuses: wait off the M
                return _off_m(_prepend(item, gen), fileno, interval, deadline)
            item = gen.send(ready)
            _timed_out(deadline)
    except StopIteration as ex:
        return ex.value
    except OSError as ex:
        raise _closed(ex) from ex


def _off_m(
    gen: Generator[Any, int, Any], fileno: int | None, interval: float, deadline: float | None
) -> Any:
    """psycopg's own wait function for gen, on a syscall helper M."""
    left = None if deadline is None else max(0.0, deadline - monotonic())
    saved = _originals["psycopg"]
    if fileno is None:
        return syscall(saved["wait_conn"], gen, interval, left)
    return syscall(saved["wait"], gen, fileno, interval, left)


def _prepend(first: Any, gen: Generator[Any, int, Any]) -> Generator[Any, int, Any]:
    """gen, which already yielded first, as a generator yielding it again."""
    ready = yield first
    while True:
        try:
            item = gen.send(ready)
        except StopIteration as ex:
            return ex.value
        ready = yield item


def _apply(waiting: ModuleType) -> None:
    saved = _originals["psycopg"]
    if saved:
        return
    saved["wait"] = waiting.wait
    saved["wait_conn"] = waiting.wait_conn
    waiting.wait = wait  # type: ignore[attr-defined]
    waiting.wait_conn = wait_conn  # type: ignore[attr-defined]


class _Hook(importlib.abc.MetaPathFinder):
    """Applies the patch when psycopg.waiting is imported after patching."""

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name != "psycopg.waiting":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        loader = spec.loader if spec is not None else None
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            run(module)
            _apply(module)
            if self in sys.meta_path:  # its one job is done
                sys.meta_path.remove(self)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


_hook = _Hook()


def patch_psycopg() -> bool:
    """psycopg's wait functions park on the poller, now or when psycopg is
    imported; False if already done."""
    if "psycopg" in _originals:
        return False
    _originals["psycopg"] = {}
    waiting = sys.modules.get("psycopg.waiting")
    if waiting is not None:
        _apply(waiting)
    else:
        sys.meta_path.insert(0, _hook)
    return True
