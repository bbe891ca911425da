"""The epoll backend of the network poller (mirrors runtime/netpoll_epoll.go).

Each descriptor is registered once, when it is opened, for
``EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET``: edge-triggered, so an event is
reported once per change and nothing has to be re-armed per wait (the
pollDesc remembers readiness nobody waited for as pdReady). Level-triggered
interest would report every idle writable socket on every poll.

``netpollBreak`` writes to an eventfd registered level-triggered for
``EPOLLIN``; ``wakesig`` (Go's netpollWakeSig) coalesces concurrent breaks
into one write, and the poll that sees the eventfd drains it.
"""

from __future__ import annotations

import os
import select
import threading

# EPOLLHUP and EPOLLERR wake both directions: the waiter's syscall reports it.
_RMASK = select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR
_WMASK = select.EPOLLOUT | select.EPOLLHUP | select.EPOLLERR
_EVENTS = select.EPOLLIN | select.EPOLLOUT | select.EPOLLRDHUP | select.EPOLLET
MAX_EVENTS = 512  # per epoll_wait (Go: 128); larger batches amortise the call


class EpollBackend:
    rmask = _RMASK
    wmask = _WMASK
    needs_arm = False

    def __init__(self) -> None:
        self.ep = select.epoll()  # close-on-exec
        self.breakfd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.ep.register(self.breakfd, select.EPOLLIN)
        self.wakesig = False  # a break is pending: later ones need no write
        self.wakelock = threading.Lock()

    def open(self, fd: int) -> None:
        self.ep.register(fd, _EVENTS)

    def close(self, fd: int) -> None:
        self.ep.unregister(fd)

    def arm(self, fd: int, mode: int) -> None:
        """Edge-triggered registration needs no arming."""

    def wait(self, delay: float) -> list[tuple[int, int]]:
        try:
            return self.ep.poll(delay, MAX_EVENTS)
        except ValueError:  # closed at the run's end
            return []

    def wakeup(self) -> None:
        """netpollBreak: interrupt a blocked wait."""
        with self.wakelock:
            if self.wakesig:
                return
            self.wakesig = True
        try:
            os.eventfd_write(self.breakfd, 1)
        except OSError:
            pass  # closed at the run's end, or already full

    def drain(self) -> None:
        try:
            os.eventfd_read(self.breakfd)
        except OSError:
            pass
        self.wakesig = False

    def shutdown(self) -> None:
        self.ep.close()
        os.close(self.breakfd)
