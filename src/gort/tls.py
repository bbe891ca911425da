"""gort.tls: TLS over a gort.net Conn (Go's crypto/tls Client, Server, Dial, Listen).

The TLS state machine is the ssl module's ``SSLObject`` between two
``MemoryBIO``s; the bytes move over the Conn, so every wait is the Conn's
(a goroutine parked in ``IO wait``, never the M) and deadlines and close
behave exactly as on the plain Conn. The handshake runs on the first read
or write, as in Go, or at once with ``handshake()`` (``dial`` does).

A TLS Conn allows one reader and one writer at a time, as Go's does, on
goroutines of one P: an ``SSLObject`` is not safe for use by two threads
at once.
"""

from __future__ import annotations

import ssl
from typing import Any

from .net import Addr, Conn, Listener, split_host_port
from .net import dial as net_dial
from .net import listen as net_listen
from .net.net import _Closer, _FDConn
from .runtime.proc import getg
from .sleep import now

READ_CHUNK = 16 << 10  # one TLS record at most
CLOSE_NOTIFY_TIMEOUT = 5.0  # tls.Conn.Close: the close_notify alert's write deadline


class TLSConn(_FDConn):
    """A TLS connection with Conn's interface (deadlines and fileno are the Conn's)."""

    __slots__ = ("_handshaken", "_in", "_obj", "_out", "conn")

    def __init__(
        self, conn: Conn, obj: ssl.SSLObject, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO
    ) -> None:
        super().__init__(conn.fd, conn._network)
        self.conn = conn
        self._obj = obj
        self._in = incoming
        self._out = outgoing
        self._handshaken = False

    # -- the record layer's plumbing --------------------------------------

    def _flush(self) -> None:
        """Send what the TLS engine produced."""
        data = self._out.read()
        if data:
            self.conn.write(data)

    def _fill(self) -> None:
        """Feed the TLS engine with what the peer sent (parks in IO wait)."""
        data = self.conn.read(READ_CHUNK)
        if data:
            self._in.write(data)
        else:
            self._in.write_eof()

    def handshake(self) -> None:
        """Run the handshake now; certificate errors are raised here
        (``ssl.SSLCertVerificationError``)."""
        if self._handshaken:
            return
        obj = self._obj
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                self._fill()
            except ssl.SSLError:
                self._flush()  # the alert that tells the peer why
                raise
        self._flush()
        self._handshaken = True

    # -- Conn's interface ---------------------------------------------------

    def read(self, n: int) -> bytes:
        """Up to n bytes of application data; b"" once the peer closed."""
        if not self._handshaken:
            self.handshake()
        obj = self._obj
        while True:
            try:
                return obj.read(n)
            except ssl.SSLWantReadError:
                self._flush()  # post-handshake messages (session tickets, key updates)
                self._fill()
            except ssl.SSLZeroReturnError:
                return b""
            except ssl.SSLEOFError:
                return b""  # the peer closed the TCP conn without close_notify

    def readinto(self, buf: Any) -> int:
        data = self.read(len(memoryview(buf)))
        memoryview(buf).cast("B")[: len(data)] = data
        return len(data)

    def write(self, b: Any) -> int:
        """Encrypt and send all of b."""
        if not self._handshaken:
            self.handshake()
        n = self._obj.write(b)  # a MemoryBIO takes every record at once
        self._flush()
        return n

    def close(self) -> None:
        """Send close_notify (bounded by a 5 s deadline, as Go) and close the Conn."""
        conn = self.conn
        if conn.fd.closed:
            return
        try:
            if self._handshaken:
                conn.set_write_deadline(now() + CLOSE_NOTIFY_TIMEOUT)
                self._close_notify()
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()

    def _close_notify(self) -> None:
        try:
            self._obj.unwrap()
        except ssl.SSLWantReadError:
            pass  # the peer's close_notify is not waited for, as in Go
        self._flush()

    def close_write(self) -> None:
        """Send close_notify and half-close the Conn (tls.Conn.CloseWrite)."""
        if not self._handshaken:
            raise OSError("tls: CloseWrite called before handshake complete")
        self._close_notify()
        self.conn.close_write()

    @property
    def local_addr(self) -> Addr:
        return self.conn.local_addr

    @property
    def remote_addr(self) -> Addr:
        return self.conn.remote_addr

    def version(self) -> str | None:
        """The negotiated protocol ("TLSv1.3"), once the handshake is done."""
        return self._obj.version()

    def getpeercert(self) -> Any:
        return self._obj.getpeercert()

    def __repr__(self) -> str:
        return f"<gort.tls.TLSConn over {self.conn!r}>"


def _wrap(
    conn: Conn, context: ssl.SSLContext, server_side: bool, server_name: str | None
) -> TLSConn:
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = context.wrap_bio(incoming, outgoing, server_side=server_side, server_hostname=server_name)
    return TLSConn(conn, obj, incoming, outgoing)


def client(
    conn: Conn, server_name: str | None = None, context: ssl.SSLContext | None = None
) -> TLSConn:
    """The client side of TLS over conn (tls.Client); the handshake runs on first use.

    Without a context, the system's defaults verify the server's certificate
    against server_name.
    """
    if context is None:
        context = ssl.create_default_context()
    return _wrap(conn, context, False, server_name)


def server(conn: Conn, context: ssl.SSLContext) -> TLSConn:
    """The server side of TLS over conn (tls.Server); context holds the certificate."""
    return _wrap(conn, context, True, None)


def dial(
    network: str, address: str, context: ssl.SSLContext | None = None, timeout: float | None = None
) -> TLSConn:
    """Dial and handshake (tls.DialWithDialer): timeout covers both; the
    server name is address's host."""
    getg("gort.tls.dial")
    deadline = now() + timeout if timeout is not None else None
    host = split_host_port(address)[0]
    conn = net_dial(network, address, timeout=timeout)
    tc = client(conn, server_name=host, context=context)
    try:
        if deadline is not None:
            conn.set_deadline(deadline)
        tc.handshake()
        if deadline is not None:
            conn.set_deadline(None)
    except BaseException:
        conn.close()
        raise
    return tc


class TLSListener(_Closer):
    """Accepts TLS connections (tls.NewListener): the handshake of each runs
    on its first read or write, in its own goroutine, not in accept."""

    __slots__ = ("context", "listener")

    def __init__(self, listener: Listener, context: ssl.SSLContext) -> None:
        self.listener = listener
        self.context = context

    def accept(self) -> TLSConn:
        return server(self.listener.accept(), self.context)

    def close(self) -> None:
        self.listener.close()

    @property
    def addr(self) -> Addr:
        return self.listener.addr

    def fileno(self) -> int:
        return self.listener.fileno()

    def set_deadline(self, t: float | None) -> None:
        self.listener.set_deadline(t)


def listen(network: str, address: str, context: ssl.SSLContext) -> TLSListener:
    """A listener whose connections are TLS servers with context (tls.Listen)."""
    return TLSListener(net_listen(network, address), context)


__all__ = ["TLSConn", "TLSListener", "client", "dial", "listen", "server"]
