"""Conn, Listener, PacketConn (net/net.go, tcpsock.go, udpsock.go, unixsock.go).

Each wraps an internal/poll FD: reads and writes park the goroutine, never
the M. The methods are Go's, with Python's shapes: ``read(n)`` returns
bytes (b"" at EOF), ``write(b)`` writes all of b.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from types import TracebackType
from typing import Any

from ..internal.poll import FD
from ..runtime.malloc import Buffer
from .ipsock import Addr, from_sockaddr

# Go's default keep-alive (net.KeepAliveConfig): idle 15 s, interval 15 s, 9 probes.
KEEPALIVE_IDLE = 15
KEEPALIVE_INTERVAL = 15
KEEPALIVE_COUNT = 9


def set_tcp_defaults(sock: socket.socket) -> None:
    """TCP_NODELAY and keep-alive, on by default as in Go."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    if hasattr(socket, "TCP_KEEPIDLE"):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, KEEPALIVE_IDLE)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, KEEPALIVE_INTERVAL)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, KEEPALIVE_COUNT)


class _Closer:
    __slots__ = ()

    close: Callable[[], None]  # each connection and listener class defines it

    def __enter__(self) -> Any:
        return self

    def __exit__(
        self,
        typ: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _FDConn(_Closer):
    """What Conn and PacketConn share: the FD, close, deadlines."""

    __slots__ = ("_network", "fd")

    def __init__(self, fd: FD, network: str) -> None:
        self.fd = fd
        self._network = network

    def close(self) -> None:
        """Close; goroutines blocked on it raise ErrClosed."""
        self.fd.close()

    def fileno(self) -> int:
        return self.fd.fileno()

    def set_deadline(self, t: float | None) -> None:
        """Reads and writes after t (gort.now() seconds) raise Timeout; None clears."""
        self.fd.set_deadline(t)

    def set_read_deadline(self, t: float | None) -> None:
        self.fd.set_read_deadline(t)

    def set_write_deadline(self, t: float | None) -> None:
        self.fd.set_write_deadline(t)


class Conn(_FDConn):
    """A stream connection (Go's net.Conn), or a dialled datagram socket."""

    __slots__ = ("_laddr", "_raddr")

    def __init__(self, fd: FD, network: str, raddr: Addr | None = None) -> None:
        super().__init__(fd, network)
        self._raddr = raddr
        self._laddr: Addr | None = None

    def read(self, n: int) -> bytes:
        """Up to n bytes, as soon as any are there; b"" at EOF."""
        return self.fd.read(n)

    def readinto(self, buf: Any) -> int:
        return self.fd.readinto(buf)

    def read_buffer(self, n: int) -> Buffer:
        """Up to n bytes, read straight into a gort.alloc Buffer (no copy, no
        zero-fill); ``len(buf)`` is the count, 0 at EOF. The caller frees it
        (``free()`` or ``with``); if the read raises, it is freed here. A
        goroutine parked waiting for data holds no buffer."""
        return self.fd.read_buffer(n)

    def write(self, b: Any) -> int:
        """Write all of b (parking while the send buffer is full)."""
        return self.fd.write(b)

    def close_write(self) -> None:
        """Half-close: the peer reads EOF, reads here go on (CloseWrite)."""
        self.fd.shutdown(socket.SHUT_WR)

    def close_read(self) -> None:
        self.fd.shutdown(socket.SHUT_RD)

    @property
    def local_addr(self) -> Addr:
        if self._laddr is None:
            self._laddr = from_sockaddr(self._network, self.fd.sock.getsockname())
        return self._laddr

    @property
    def remote_addr(self) -> Addr:
        if self._raddr is None:
            self._raddr = from_sockaddr(self._network, self.fd.sock.getpeername())
        return self._raddr

    def __repr__(self) -> str:
        state = "closed" if self.fd.closed else f"{self.local_addr}->{self.remote_addr}"
        return f"<gort.net.Conn {self._network} {state}>"


class Listener(_Closer):
    """A stream listener (Go's net.Listener)."""

    __slots__ = ("_addr", "_network", "_unlink", "fd")

    def __init__(self, fd: FD, network: str, unlink: str | None = None) -> None:
        self.fd = fd
        self._network = network
        self._addr = from_sockaddr(network, fd.sock.getsockname())
        self._unlink = unlink  # a unix socket path made by listen, removed by close

    def accept(self) -> Conn:
        """The next connection; parks until one arrives."""
        fd, sa = self.fd.accept()
        sock = socket.socket(self.fd.sock.family, socket.SOCK_STREAM, 0, fd)
        try:
            if self._network != "unix":
                set_tcp_defaults(sock)
            conn = Conn(FD(sock), self._network, from_sockaddr(self._network, sa))
        except BaseException:
            sock.close()
            raise
        return conn

    def close(self) -> None:
        """Stop listening; a goroutine blocked in accept raises ErrClosed."""
        if self.fd.closed:
            return
        self.fd.close()
        path, self._unlink = self._unlink, None
        if path:
            try:
                os.unlink(path)
            except OSError:
                pass

    @property
    def addr(self) -> Addr:
        return self._addr

    def fileno(self) -> int:
        return self.fd.fileno()

    def set_deadline(self, t: float | None) -> None:
        """accept after t raises Timeout (TCPListener.SetDeadline); None clears."""
        self.fd.set_read_deadline(t)

    def __repr__(self) -> str:
        return f"<gort.net.Listener {self._network} {self._addr}>"


class PacketConn(_FDConn):
    """A datagram socket (Go's net.PacketConn)."""

    __slots__ = ("_addr",)

    def __init__(self, fd: FD, network: str) -> None:
        super().__init__(fd, network)
        self._addr = from_sockaddr(network, fd.sock.getsockname())

    def read_from(self, n: int) -> tuple[bytes, Addr]:
        """One datagram (truncated to n bytes) and its sender."""
        data, sa = self.fd.recvfrom(n)
        return data, from_sockaddr(self._network, sa)

    def write_to(self, b: Any, addr: Addr | str) -> int:
        """Send one datagram to addr (an Addr or "host:port" with an IP host)."""
        if isinstance(addr, str):
            from .dial import resolve_one

            sa = resolve_one(self._network, addr)
        else:
            sa = addr.sockaddr()
        return self.fd.sendto(b, sa)

    @property
    def local_addr(self) -> Addr:
        return self._addr

    def __repr__(self) -> str:
        return f"<gort.net.PacketConn {self._network} {self._addr}>"
