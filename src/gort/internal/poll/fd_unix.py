"""FD: a socket whose calls park the goroutine (internal/poll/fd_unix.go).

Every call has the same shape: check the pollDesc's error (closed, or a
deadline that passed: a deadline in the past fails even when data is
waiting, as in Go), try the non-blocking syscall, and only on EAGAIN park
in ``IO wait`` and retry. The fast path therefore costs the syscall and a
few attribute reads; the poller's lock is taken only to park.

Rejected: skipping the syscall after a short stream read (its EAGAIN is a
raised BlockingIOError, about a microsecond). A short read does not prove
the receive queue empty: TCP stops at a FIN, a unix socket at a change of
sender credentials, and the edge for what remains has already been
consumed, so the next read would wait forever.

Close evicts the waiters first (they wake with ErrClosed), unregisters the
descriptor from the poller, then closes it, so a descriptor number is never
reused while the poller still knows it. Closing twice is a no-op.
"""

from __future__ import annotations

import errno
import os
import socket
from typing import Any

from ...runtime.malloc import Buffer, alloc
from .fd import ErrClosed
from .fd_poll_runtime import (
    READ,
    WRITE,
    convert_err,
    poll_close,
    poll_evict,
    poll_open,
    poll_set_deadline,
    wait_read,
    wait_write,
)

_CONNECT_PENDING = (errno.EINPROGRESS, errno.EALREADY, errno.EINTR)


class FD:
    """A non-blocking socket registered with the runtime's poller."""

    __slots__ = ("__weakref__", "closed", "pd", "sock")

    def __init__(self, sock: socket.socket) -> None:
        """Take ownership of sock (made non-blocking). Must run in a goroutine
        of a running program: the poller belongs to the run."""
        sock.setblocking(False)
        self.sock = sock
        self.closed = False
        self.pd = poll_open(sock.fileno())
        self.pd.on_close = sock.close  # the run's end closes what is left open

    def fileno(self) -> int:
        return self.sock.fileno()

    def _oserror(self, e: OSError) -> OSError:
        """A syscall failed: on a descriptor closed meanwhile that is ErrClosed."""
        return ErrClosed() if self.closed else e

    # -- reading ------------------------------------------------------------

    def read(self, n: int) -> bytes:
        """Up to n bytes; b"" at EOF."""
        pd = self.pd
        if pd.r.err:
            raise convert_err(pd.r.err)
        if n <= 0:
            if n < 0:
                raise ValueError(f"negative read size {n}")
            return b""
        recv = self.sock.recv
        while True:
            try:
                return recv(n)
            except BlockingIOError:
                pass
            except OSError as e:
                raise self._oserror(e) from None
            wait_read(pd, "gort.net.Conn.read")

    def readinto(self, buf: Any) -> int:
        """Read into a writable buffer; the count, 0 at EOF."""
        pd = self.pd
        if pd.r.err:
            raise convert_err(pd.r.err)
        recv_into = self.sock.recv_into
        while True:
            try:
                return recv_into(buf)
            except BlockingIOError:
                pass
            except OSError as e:
                raise self._oserror(e) from None
            wait_read(pd, "gort.net.Conn.readinto")

    def read_buffer(self, n: int) -> Buffer:
        """Up to n bytes in a gort.alloc Buffer; len 0 at EOF.

        The buffer is held only while there is data to read into it: on
        EAGAIN it goes back before the goroutine parks, so an idle
        connection holds no buffer (and the P's cached span is not
        exhausted by goroutines that all wait: with 4 KiB buffers, two to a
        span, that would send every read through the mcentral's lock).
        Giving it back and taking it again is an append and a pop
        (malloc.py), less than the EAGAIN itself.
        """
        pd = self.pd
        if pd.r.err:
            raise convert_err(pd.r.err)
        recv_into = self.sock.recv_into
        while True:
            buf = alloc(n)
            try:
                got = recv_into(buf.view)
            except BlockingIOError:
                buf.free()
            except BaseException as e:
                buf.free()
                if isinstance(e, OSError):
                    raise self._oserror(e) from None
                raise
            else:
                if got != n:
                    buf._shorten(got)
                return buf
            del buf  # a freed Buffer still referenced is not handed out again
            wait_read(pd, "gort.net.Conn.read_buffer")

    def recvfrom(self, n: int) -> tuple[bytes, Any]:
        pd = self.pd
        if pd.r.err:
            raise convert_err(pd.r.err)
        recvfrom = self.sock.recvfrom
        while True:
            try:
                return recvfrom(n)
            except BlockingIOError:
                pass
            except OSError as e:
                raise self._oserror(e) from None
            wait_read(pd, "gort.net.PacketConn.read_from")

    # -- writing ------------------------------------------------------------

    def write(self, data: Any) -> int:
        """Write all of data; returns its length."""
        pd = self.pd
        if pd.w.err:
            raise convert_err(pd.w.err)
        send = self.sock.send
        try:
            n = send(data)
        except BlockingIOError:
            n = 0
        except OSError as e:
            raise self._oserror(e) from None
        t = type(data)
        view = data if t is memoryview else None  # a Buffer's view: no second view made
        total = len(data) if t is bytes else (view or memoryview(data)).nbytes
        if n >= total:
            return n
        view = memoryview(data).cast("B")
        while n < total:
            wait_write(pd, "gort.net.Conn.write")
            try:
                n += send(view[n:])
            except BlockingIOError:
                pass
            except OSError as e:
                raise self._oserror(e) from None
        return n

    def sendto(self, data: Any, addr: Any) -> int:
        pd = self.pd
        if pd.w.err:
            raise convert_err(pd.w.err)
        sendto = self.sock.sendto
        while True:
            try:
                return sendto(data, addr)
            except BlockingIOError:
                pass
            except OSError as e:
                raise self._oserror(e) from None
            wait_write(pd, "gort.net.PacketConn.write_to")

    # -- connections --------------------------------------------------------

    def accept(self) -> tuple[int, Any]:
        """A new connection's descriptor and peer address.

        ECONNABORTED (the peer gave up while queued) is retried, as Go does;
        EMFILE/ENFILE are raised and leave the listener usable.
        """
        pd = self.pd
        if pd.r.err:
            raise convert_err(pd.r.err)
        accept = self.sock._accept  # type: ignore[attr-defined]
        while True:
            try:
                fd: int
                fd, addr = accept()
                return fd, addr
            except BlockingIOError:
                pass
            except ConnectionAbortedError:
                continue
            except OSError as e:
                raise self._oserror(e) from None
            wait_read(pd, "gort.net.Listener.accept")

    def connect(self, addr: Any) -> None:
        """Connect to addr (an address the socket module takes, resolved)."""
        pd = self.pd
        if pd.w.err:
            raise convert_err(pd.w.err)
        sock = self.sock
        err = sock.connect_ex(addr)
        while err:
            if err == errno.EISCONN:
                return
            if err not in _CONNECT_PENDING:
                raise OSError(err, os.strerror(err))
            wait_write(pd, "gort.net.dial")
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err == 0:
                # A wake-up is only a hint (a stale event of a reused
                # descriptor number, say): connected once the peer is known.
                try:
                    sock.getpeername()
                except OSError:
                    err = errno.EINPROGRESS

    def shutdown(self, how: int) -> None:
        if self.closed:
            raise ErrClosed()
        try:
            self.sock.shutdown(how)
        except OSError as e:
            raise self._oserror(e) from None

    def close(self) -> None:
        """Wake every waiter with ErrClosed, unregister, close. Idempotent."""
        if self.closed:
            return
        self.closed = True
        pd = self.pd
        poll_evict(pd)
        poll_close(pd)
        self.sock.close()

    # -- deadlines ----------------------------------------------------------

    def set_deadline(self, t: float | None) -> None:
        poll_set_deadline(self.pd, t, (READ, WRITE), "gort.net.Conn.set_deadline")

    def set_read_deadline(self, t: float | None) -> None:
        poll_set_deadline(self.pd, t, (READ,), "gort.net.Conn.set_read_deadline")

    def set_write_deadline(self, t: float | None) -> None:
        poll_set_deadline(self.pd, t, (WRITE,), "gort.net.Conn.set_write_deadline")
