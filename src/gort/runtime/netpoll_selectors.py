"""The portable backend of the network poller, on ``selectors``.

For platforms without epoll. ``selectors`` is level-triggered (kqueue's
EV_CLEAR is not exposed), so, as Go's level-triggered backends do with
``netpollarm``, a direction is watched only while a goroutine waits for it:
``arm`` adds it before the park and ``wait`` drops it once reported.
Otherwise every idle writable socket would be reported on every poll.

The break is a non-blocking pipe. A wait already blocked when a descriptor
is armed may not see the new interest (select(2) copies its sets), so
``arm`` breaks the poller when an M is blocked in it.
"""

from __future__ import annotations

import os
import selectors
import threading

from .runtime2 import sched

_BITS = (selectors.EVENT_READ, selectors.EVENT_WRITE)  # by mode: netpoll.READ, WRITE


class _Selector(selectors.DefaultSelector):
    """The platform's selector with what it waits with bound now: gort.monkey
    later points the selectors classes at versions that park goroutines,
    which the poller itself must never use (gort.monkey imports this module
    before patching)."""


def _bind_now() -> None:
    for attr in ("_selector_cls", "_select"):
        for klass in selectors.DefaultSelector.__mro__:
            if attr in vars(klass):
                setattr(_Selector, attr, vars(klass)[attr])
                break


_bind_now()


class SelectorsBackend:
    rmask = selectors.EVENT_READ
    wmask = selectors.EVENT_WRITE
    needs_arm = True

    def __init__(self) -> None:
        self.sel = _Selector()
        r, w = os.pipe()
        os.set_blocking(r, False)
        os.set_blocking(w, False)
        self.breakfd = r
        self._breakw = w
        self.sel.register(r, selectors.EVENT_READ)
        self.interest: dict[int, int] = {}  # the directions armed per fd
        self.lock = threading.Lock()  # interest and the selector's registrations
        self.wakesig = False

    def open(self, fd: int) -> None:
        """Nothing is watched until a goroutine waits."""

    def close(self, fd: int) -> None:
        with self.lock:
            if self.interest.pop(fd, 0):
                self.sel.unregister(fd)

    def arm(self, fd: int, mode: int) -> None:
        bit = _BITS[mode]
        with self.lock:
            old = self.interest.get(fd, 0)
            if old & bit:
                return
            self.interest[fd] = old | bit
            if old:
                self.sel.modify(fd, old | bit)
            else:
                self.sel.register(fd, bit)
        if sched.pollm is not None:
            self.wakeup()

    def wait(self, delay: float) -> list[tuple[int, int]]:
        timeout = None if delay < 0 else delay
        try:
            ready = self.sel.select(timeout)
        except (ValueError, OSError):  # closed at the run's end
            return []
        out: list[tuple[int, int]] = []
        with self.lock:
            for key, ev in ready:
                fd = key.fd
                out.append((fd, ev))
                if fd == self.breakfd:
                    continue
                old = self.interest.get(fd, 0)
                new = old & ~ev
                if new == old:
                    continue
                if new:
                    self.interest[fd] = new
                    self.sel.modify(fd, new)
                else:
                    del self.interest[fd]
                    self.sel.unregister(fd)
        return out

    def wakeup(self) -> None:
        if self.wakesig:
            return
        self.wakesig = True
        try:
            os.write(self._breakw, b"\0")
        except OSError:
            pass

    def drain(self) -> None:
        try:
            while os.read(self.breakfd, 512):
                pass
        except OSError:
            pass
        self.wakesig = False

    def shutdown(self) -> None:
        self.sel.close()
        os.close(self.breakfd)
        os.close(self._breakw)
