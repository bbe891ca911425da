"""Running unmodified blocking libraries on goroutines (gevent's monkey
patching, on gort's poller).

``patch_all()`` replaces the standard library's blocking entry points with
versions that park the calling goroutine instead of blocking its M:

* ``socket.socket`` becomes a subclass whose blocking calls retry the
  non-blocking syscall and, on EAGAIN, park in ``IO wait`` on the run's
  poller (the same poll descriptors gort.net uses: never a second I/O
  loop). A socket timeout becomes a poller deadline for the call; it
  expires as the standard library's ``TimeoutError("timed out")``.
* name resolution (``getaddrinfo``, ``gethostbyname``...) runs on a
  syscall helper M, as gort.net's resolver does.
* ``time.sleep`` is ``gort.sleep``; ``select.select`` first polls, then
  waits on a syscall helper M.

Invariant: outside a running gort goroutine (before or after ``gort.run``,
on a plain thread) every patched object behaves exactly as the original:
the socket is put back into the blocking mode its timeout says and the
original call runs. Inside a goroutine the descriptor is kept
non-blocking and registered with the run's poller; the mode is switched
only when a socket crosses between the two worlds.

Sockets made before patching stay instances of the original class and keep
working (unpatched: they block the M they run on); ``patch_all`` warns when
it finds any, naming where the module was first imported.
"""

from __future__ import annotations

import errno
import functools
import gc
import os
import select as _select_mod
import socket as _socket_mod
import sys
import time as _time_mod
import warnings
from collections.abc import Callable
from time import monotonic
from typing import Any, SupportsIndex, TypeVar

from greenlet import getcurrent

from .runtime.netpoll import (
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
from .runtime.runtime2 import sched
from .runtime.syscall import syscall
from .sleep import sleep as _gort_sleep

__all__ = [
    "MonkeyWarning",
    "is_patched",
    "offload",
    "patch_all",
    "patch_select",
    "patch_socket",
    "patch_time",
]

F = TypeVar("F", bound=Callable[..., Any])

_orig_socket = _socket_mod.socket
_originals: dict[str, dict[str, Any]] = {}  # patched module name -> its replaced attributes
_CONNECT_PENDING = (errno.EINPROGRESS, errno.EALREADY, errno.EINTR)


class MonkeyWarning(RuntimeWarning):
    """Patching came too late for something already made or imported."""


def in_goroutine() -> bool:
    """True on a goroutine of a running program (where parking is possible)."""
    return getattr(getcurrent(), "gp", None) is not None and sched.running and not sched.exiting


def offload(fn: F) -> F:
    """Run a known-blocking function (a C call that holds the thread) on a
    syscall helper M when called from a goroutine; directly elsewhere.
    Usable as a decorator or as ``offload(lib.call)(args)``."""

    @functools.wraps(fn)
    def offloaded(*args: Any, **kwargs: Any) -> Any:
        if in_goroutine():
            return syscall(fn, *args, **kwargs)
        return fn(*args, **kwargs)

    return offloaded  # type: ignore[return-value]


# ---------------------------------------------------------------------------
# socket


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
        super().settimeout(value)  # validates, and keeps the C socket in step
        self._gort_timeout = super().gettimeout()
        if self._gort_pd is None:
            return
        if self._gort_timeout == 0.0:
            # A non-blocking socket runs the original calls and needs no
            # registration; its owner may register it itself (gort.net's FD
            # makes its sockets with socket.socket, patched or not).
            self._gort_detach()
        else:
            super().settimeout(0.0)

    def gettimeout(self) -> float | None:
        return self._gort_timeout

    def setblocking(self, flag: bool) -> None:
        self.settimeout(None if flag else 0.0)

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


# ---------------------------------------------------------------------------
# time, select


def _sleep(secs: float | SupportsIndex) -> None:
    if in_goroutine():
        d = float(secs) if isinstance(secs, float) else float(secs.__index__())
        if d < 0:
            raise ValueError("sleep length must be non-negative")
        _gort_sleep(d)
    else:
        _originals["time"]["sleep"](secs)


def patch_time() -> bool:
    """time.sleep parks the goroutine (gort.sleep) instead of the M."""
    if "time" in _originals:
        return False
    _originals["time"] = {"sleep": _time_mod.sleep}
    _time_mod.sleep = _sleep
    return True


def _select(rlist: Any, wlist: Any, xlist: Any, timeout: float | None = None) -> Any:
    orig = _originals["select"]["select"]
    if not in_goroutine() or timeout == 0:
        return orig(rlist, wlist, xlist, timeout)
    ready = orig(rlist, wlist, xlist, 0)
    if any(ready):
        return ready
    return syscall(orig, rlist, wlist, xlist, timeout)


def patch_select() -> bool:
    """select.select waits without holding the goroutine's M."""
    if "select" in _originals:
        return False
    _originals["select"] = {"select": _select_mod.select}
    _select_mod.select = _select
    return True


# ---------------------------------------------------------------------------
# patch_all, is_patched, import-order detection


_PATCHERS: dict[str, Callable[[], bool]] = {
    "socket": patch_socket,
    "time": patch_time,
    "select": patch_select,
}


def patch_all() -> None:
    """Patch every module gort knows how to patch. Patching twice is a no-op."""
    for patch in _PATCHERS.values():
        patch()


def is_patched(name: str) -> bool:
    """Whether the standard library module ``name`` is patched."""
    if not isinstance(name, str):
        raise TypeError(f"is_patched: module name must be str, not {type(name).__name__}")
    return name in _originals


def _live_instances(cls: type) -> int:
    return sum(1 for o in gc.get_objects() if type(o) is cls)


def _first_importer(module: str) -> str:
    """Where ``module`` was first imported from, as far as sys.modules
    (insertion-ordered) tells: the earliest other loaded module that holds
    it or one of its names, gort's own modules aside."""
    target = sys.modules.get(module)
    if target is None:
        return "nowhere"
    own = (module, "_" + module)
    names = {id(v) for v in vars(target).values() if getattr(v, "__module__", None) in own}
    names.add(id(target))
    holders = [
        (name, mod)
        for name, mod in list(sys.modules.items())
        if name != module
        and not name.startswith(("gort", "_"))
        and mod is not None
        and any(id(v) in names for v in list(vars(mod).values()))
    ]
    # The program's own modules first: the standard library's own imports
    # (gort imports ssl, say) are not what the user can reorder.
    holders.sort(key=lambda h: h[0].partition(".")[0] in sys.stdlib_module_names)
    if not holders:
        return "an unknown module"
    name, mod = holders[0]
    return f"{name} ({getattr(mod, '__file__', None) or 'built-in'})"


def _warn_late(module: str, count: Callable[[], int]) -> None:
    n = count()
    if n:
        warnings.warn(
            f"gort.monkey: patching {module} after it was imported and used: {n} {module} "
            f"object(s) made before patching stay unpatched and block their M; "
            f"{module} was first imported by {_first_importer(module)}. "
            f"Run with `python -m gort --patch` or patch before importing it.",
            MonkeyWarning,
            stacklevel=4,
        )
