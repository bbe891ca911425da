"""The patched socket module: ``socket.socket`` on the run's poller, the
resolver on syscall helpers."""

from __future__ import annotations

import errno
import os
import socket as _socket_mod
from collections.abc import Callable
from time import monotonic
from typing import Any

from ..runtime.netpoll import (
    POLL_ERR_TIMEOUT,
    READ,
    WRITE,
    PollDesc,
    Poller,
    netpollinit,
    poll_close,
    poll_evict,
    poll_open,
    poll_set_deadline,
    poll_wait,
)
from ..runtime.runtime2 import sched
from ..runtime.syscall import syscall
from ._core import _live_instances, _originals, _warn_late, in_goroutine, offload

_orig_socket = _socket_mod.socket
_CONNECT_PENDING = (errno.EINPROGRESS, errno.EALREADY, errno.EINTR)


def _closed_error() -> OSError:
    return OSError(errno.EBADF, os.strerror(errno.EBADF))


class socket(_socket_mod.socket):
    """socket.socket, parking the goroutine where the original blocks.

    ``_gort_timeout`` is the timeout the user set (None: blocking, 0.0:
    non-blocking, else seconds); the C socket's own timeout equals it
    except while ``_gort_pd`` is set, when the descriptor is non-blocking
    and registered with ``_gort_poller``. Only the goroutine or thread using
    the socket writes these fields, as for the C socket's own state.
    """

    __slots__ = ("_gort_owned", "_gort_pd", "_gort_poller", "_gort_timeout")

    def __init__(
        self, family: int = -1, type: int = -1, proto: int = -1, fileno: int | None = None
    ) -> None:
        super().__init__(family, type, proto, fileno)
        self._gort_timeout: float | None = super().gettimeout()
        self._gort_pd: PollDesc | None = None
        self._gort_poller: Poller | None = None
        # Made by a goroutine: the run's end closes it if the program did not
        # (no descriptor a run opened outlives it); made outside: only detached.
        self._gort_owned = in_goroutine()
        if self._gort_owned:
            self._gort_attach()  # registered now, so the run's end sees it

    # -- mode switching ----------------------------------------------------

    def _gort_park_pd(self) -> PollDesc | None:
        """The poll descriptor to park on, or None to run the original call
        (outside a goroutine, a non-blocking socket, or a descriptor the
        poller refuses)."""
        if not in_goroutine():
            if self._gort_pd is not None:
                self._gort_detach()
            return None
        if self._gort_timeout == 0.0:
            return None
        pd = self._gort_pd
        if pd is not None and self._gort_poller is sched.poller and not pd.closing:
            return pd
        if pd is not None:
            self._gort_detach()
        return self._gort_attach()

    def _gort_attach(self) -> PollDesc | None:
        poller = netpollinit()
        try:
            pd = poll_open(self.fileno())
        except OSError:
            return None  # e.g. already registered by gort.net: run the original call
        super().settimeout(0.0)
        if self._gort_owned:
            pd.on_close = self.close
        else:
            pd.on_close = self._gort_forget
        self._gort_pd = pd
        self._gort_poller = poller
        return pd

    def _gort_forget(self) -> None:
        """The run ended with the socket still registered: back to its mode."""
        self._gort_pd = None
        self._gort_poller = None
        if self.fileno() >= 0:
            super().settimeout(self._gort_timeout)

    def _gort_detach(self) -> None:
        pd = self._gort_pd
        if pd is None:
            return
        if self._gort_poller is sched.poller and in_goroutine():
            poll_evict(pd)
            poll_close(pd)
        self._gort_forget()

    def _gort_io(self, mode: int, call: str, fn: Callable[..., Any], *args: Any) -> Any:
        """fn(*args), parking on EAGAIN until ready or the timeout passes."""
        pd = self._gort_park_pd()
        if pd is None:
            return fn(*args)
        return self._gort_retry(pd, mode, call, self._gort_deadline(), fn, *args)

    def _gort_deadline(self) -> float | None:
        t = self._gort_timeout
        return None if t is None else monotonic() + t

    def _gort_retry(
        self,
        pd: PollDesc,
        mode: int,
        call: str,
        deadline: float | None,
        fn: Callable[..., Any],
        *args: Any,
    ) -> Any:
        while True:
            try:
                return fn(*args)
            except BlockingIOError:
                pass
            self._gort_wait(pd, mode, call, deadline)

    def _gort_wait(self, pd: PollDesc, mode: int, call: str, deadline: float | None) -> None:
        """Park until pd is ready for mode; TimeoutError at the deadline."""
        if deadline is None:
            err = poll_wait(pd, mode, call)
        else:
            poll_set_deadline(pd, deadline, (mode,), call)
            try:
                err = poll_wait(pd, mode, call)
            finally:
                poll_set_deadline(pd, None, (mode,), call)
        if err == POLL_ERR_TIMEOUT:
            raise TimeoutError("timed out")
        if err:
            raise _closed_error()

    # -- timeouts ----------------------------------------------------------

    def settimeout(self, value: float | None) -> None:
        # A timeout of 0 keeps the registration: clients poll that way for a
        # moment and come back to their timeout (redis-py's can_read before
        # every command), and leaving the poller would cost two epoll_ctl
        # calls each time. The original calls run meanwhile (_gort_park_pd).
        self._gort_settimeout(value, release=False)

    def _gort_settimeout(self, value: float | None, release: bool) -> None:
        super().settimeout(value)  # validates, and keeps the C socket in step
        self._gort_timeout = super().gettimeout()
        if self._gort_pd is None:
            return
        if self._gort_timeout == 0.0 and release:
            self._gort_detach()
        else:
            super().settimeout(0.0)

    def gettimeout(self) -> float | None:
        return self._gort_timeout

    def setblocking(self, flag: bool) -> None:
        # setblocking(False) is how an owner with a poller of its own takes
        # the descriptor (gort.net's FD makes its sockets with socket.socket,
        # patched or not, and registers them itself): leave the poller.
        self._gort_settimeout(None if flag else 0.0, release=not flag)

    def getblocking(self) -> bool:
        return self._gort_timeout != 0.0

    @property
    def timeout(self) -> float | None:
        return self._gort_timeout

    # -- reading -----------------------------------------------------------

    def recv(self, *args: Any) -> bytes:
        return self._gort_io(READ, "socket.recv", super().recv, *args)  # type: ignore[no-any-return]

    def recv_into(self, *args: Any) -> int:
        return self._gort_io(READ, "socket.recv_into", super().recv_into, *args)  # type: ignore[no-any-return]

    def recvfrom(self, *args: Any) -> tuple[bytes, Any]:
        return self._gort_io(READ, "socket.recvfrom", super().recvfrom, *args)  # type: ignore[no-any-return]

    def recvfrom_into(self, *args: Any) -> tuple[int, Any]:
        fn = super().recvfrom_into
        return self._gort_io(READ, "socket.recvfrom_into", fn, *args)  # type: ignore[no-any-return]

    def _accept(self) -> tuple[int, Any]:
        return self._gort_io(READ, "socket.accept", super()._accept)  # type: ignore[misc,no-any-return]

    # -- writing -----------------------------------------------------------

    def send(self, *args: Any) -> int:
        return self._gort_io(WRITE, "socket.send", super().send, *args)  # type: ignore[no-any-return]

    def sendto(self, *args: Any) -> int:
        return self._gort_io(WRITE, "socket.sendto", super().sendto, *args)  # type: ignore[no-any-return]

    def sendall(self, data: Any, flags: int = 0) -> None:
        pd = self._gort_park_pd()
        if pd is None:
            return super().sendall(data, flags)
        # The C sendall on a non-blocking descriptor cannot say how much went
        # out before EAGAIN, so loop on send; the timeout covers the whole
        # call, as the standard library's does.
        deadline = self._gort_deadline()
        view = memoryview(data).cast("B")
        send = super().send
        n = 0
        while n < len(view):
            n += self._gort_retry(pd, WRITE, "socket.sendall", deadline, send, view[n:], flags)
        return None

    def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        if self._gort_park_pd() is None:
            return super().sendfile(file, offset, count)
        return self._sendfile_use_send(file, offset, count)  # type: ignore[attr-defined,no-any-return]

    # -- connecting --------------------------------------------------------

    def connect(self, address: Any) -> None:
        err = self._gort_connect(address, "socket.connect")
        if err:
            raise OSError(err, os.strerror(err))

    def connect_ex(self, address: Any) -> int:
        try:
            return self._gort_connect(address, "socket.connect_ex")
        except TimeoutError:
            return errno.EAGAIN  # what the original returns when its timeout passes

    def _gort_connect(self, address: Any, call: str) -> int:
        pd = self._gort_park_pd()
        if pd is None:
            return super().connect_ex(address)
        deadline = self._gort_deadline()
        address = _resolved(self.family, address)
        err = super().connect_ex(address)
        while err in _CONNECT_PENDING:
            self._gort_wait(pd, WRITE, call, deadline)
            err = self.getsockopt(_socket_mod.SOL_SOCKET, _socket_mod.SO_ERROR)
            if err == 0:
                try:  # a wake-up is a hint: connected once the peer is known
                    self.getpeername()
                except OSError:
                    err = errno.EINPROGRESS
        return 0 if err == errno.EISCONN else err

    # -- closing -----------------------------------------------------------

    def _real_close(self, *args: Any) -> None:
        # Waiters wake with EBADF and the poller forgets the descriptor
        # before its number can be reused.
        self._gort_detach()
        super()._real_close(*args)  # type: ignore[misc]

    def detach(self) -> int:
        self._gort_detach()
        return super().detach()


def _resolved(family: int, address: Any) -> Any:
    """address with its host name resolved on a syscall helper, so the C
    connect does not resolve it on the M."""
    if family not in (_socket_mod.AF_INET, _socket_mod.AF_INET6) or not isinstance(address, tuple):
        return address
    host = address[0]
    if not isinstance(host, str) or _is_ip(host, family):
        return address
    infos = syscall(_originals["socket"]["getaddrinfo"], host, address[1], family)
    return (infos[0][4][0], *address[1:])


def _is_ip(host: str, family: int) -> bool:
    try:
        _socket_mod.inet_pton(family, host)
    except OSError:
        return False
    return True


_RESOLVERS = ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr", "getnameinfo")


def patch_socket() -> bool:
    """Patch socket.socket and the resolver functions; False if already done."""
    if "socket" in _originals:
        return False
    _warn_late("socket", lambda: _live_instances(_orig_socket))
    saved: dict[str, Any] = {"socket": _orig_socket}
    for name in _RESOLVERS:
        saved[name] = getattr(_socket_mod, name)
        setattr(_socket_mod, name, offload(saved[name]))
    _socket_mod.socket = socket  # type: ignore[misc]
    _originals["socket"] = saved
    return True
