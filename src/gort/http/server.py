"""Go's net/http server (server.go): a goroutine per connection.

``Server.serve`` accepts connections and starts one goroutine per connection
(``_Conn.serve``). That goroutine reads requests (``RequestReader``), runs the
handler on each in turn and writes the response through a ``ResponseWriter``,
which follows Go's: the first 2048 bytes are buffered, so a handler that
finishes within them gets an automatic Content-Length (and a sniffed
Content-Type); past them the header goes out and the body is chunked
(HTTP/1.1) or delimited by closing the connection (HTTP/1.0).

State shared between goroutines: ``Server._conns`` (added by the accept loop,
removed by each connection's goroutine, walked by shutdown) and
``_Conn.state`` (written by its connection goroutine, read by shutdown); both
are single attribute or set operations, atomic under the GIL. Everything else
in a ``_Conn`` and its writer belongs to the connection's goroutine.
"""

from __future__ import annotations

import errno
import logging
import random
import time
from collections.abc import Callable
from email.utils import formatdate
from typing import Any, Protocol

import gort

from .header import Header
from .request import READ_SIZE, Body, ProtocolError, Request, RequestReader
from .sniff import detect_content_type
from .status import status_line

log = logging.getLogger("gort.http")

BUFFER_BEFORE_CHUNKING = 2048  # Go's bufferBeforeChunkingSize
MAX_POST_HANDLER_READ_BYTES = 256 << 10  # Go's maxPostHandlerReadBytes
PENDING_MAX = 16384  # framed output held back before a write to the connection
RST_AVOIDANCE_DELAY = 0.5  # Go's rstAvoidanceDelay
DEFAULT_MAX_HEADER_BYTES = 1 << 20

# connection states (Go's ConnState)
STATE_NEW, STATE_ACTIVE, STATE_IDLE, STATE_CLOSED = range(4)


class Handler(Protocol):
    """Go's http.Handler: an object with serve_http(w, r)."""

    def serve_http(self, w: ResponseWriter, r: Request) -> None: ...


HandlerFunc = Callable[["ResponseWriter", Request], Any]


def as_handler_func(handler: Handler | HandlerFunc) -> HandlerFunc:
    """A callable (w, r) for a Handler object or a handler function."""
    serve = getattr(handler, "serve_http", None)
    if serve is not None:
        return serve  # type: ignore[no-any-return]
    if not callable(handler):
        raise TypeError(f"http: handler {handler!r} is neither callable nor a Handler")
    return handler


class ServerClosedError(Exception):
    """The type of ErrServerClosed."""


ErrServerClosed = ServerClosedError("http: Server closed")


class ErrBodyNotAllowed(Exception):
    """A write to a response whose method or status has no body."""

    def __init__(self) -> None:
        super().__init__("http: request method or response status code does not allow body")


class ErrContentLength(Exception):
    """A write past the Content-Length the handler declared."""

    def __init__(self) -> None:
        super().__init__("http: wrote more than the declared Content-Length")


class ErrAbortHandler(Exception):
    """Raise in a handler to abort the response without logging (Go's panic(ErrAbortHandler))."""

    def __init__(self) -> None:
        super().__init__("net/http: abort Handler")


def body_allowed_for_status(code: int) -> bool:
    """Go's bodyAllowedForStatus: not for 1xx, 204 or 304."""
    return not (100 <= code <= 199 or code == 204 or code == 304)


_date = [0, b""]  # [unix second, b"Date: ...\r\n"]; a stale pair is still a valid date


def _date_line() -> bytes:
    t = int(time.time())
    if t != _date[0]:
        _date[1] = b"Date: " + formatdate(t, usegmt=True).encode() + b"\r\n"
        _date[0] = t
    return _date[1]  # type: ignore[return-value]


def _serialize(h: Header) -> tuple[bytes, int, bool, bool, bool, str]:
    """The handler's header as wire bytes, plus what the writer must know:
    (bytes, declared Content-Length or -1, has Date, has Content-Type,
    asks to close, Transfer-Encoding). Content-Length and Transfer-Encoding
    are left out of the bytes: the writer writes them itself."""
    cl = -1
    te = ""
    lines = []
    for k, vs in h._m.items():
        if k == "Content-Length":
            v = vs[0].strip()
            if v.isdigit() and v.isascii():
                cl = int(v)
            else:
                log.warning("http: invalid Content-Length of %r", v)
            continue
        if k == "Transfer-Encoding":
            te = vs[0].strip().lower()
            continue
        for v in vs:
            if "\r" in v or "\n" in v:  # Go's headerNewlineToSpace
                v = v.replace("\r", " ").replace("\n", " ")
            lines.append(f"{k}: {v}\r\n")
    text = "".join(lines)
    try:
        data = text.encode("latin-1")
    except UnicodeEncodeError:
        data = text.encode("utf-8")
    m = h._m
    conn = m.get("Connection")
    close = conn is not None and any("close" in v.lower() for v in conn)
    return data, cl, "Date" in m, "Content-Type" in m, close, te


class ResponseWriter:
    """What a handler writes its response through (Go's http.ResponseWriter).

    ``header()`` is the header map to fill before ``write_header(code)``;
    ``write(b)`` sends body bytes (calling write_header(200) first if needed);
    ``flush()`` sends what is buffered now (Go's http.Flusher).
    """

    __slots__ = (
        "_buf",
        "_chunking",
        "_cl",
        "_close_hdr",
        "_committed",
        "_conn",
        "_has_ctype",
        "_has_date",
        "_hdr",
        "_head",
        "_header",
        "_on_wire",
        "_pending",
        "_req",
        "_status",
        "_te",
        "_written",
        "_wrote_continue",
        "_wrote_header",
        "close_after",
    )

    def __init__(self, conn: _Conn, req: Request) -> None:
        self._conn = conn
        self._req = req
        self._header: Header | None = None
        self._wrote_header = False
        self._committed = False  # the header has been framed (into _pending or sent)
        self._status = 200
        self._buf = bytearray()
        self._pending = bytearray()  # framed output not yet written to the connection
        self._on_wire = False  # some of the response has been written to the connection
        self._written = 0
        self._cl = -1
        self._chunking = False
        self._head = req.method == "HEAD"
        self._hdr = b""
        self._has_date = self._has_ctype = self._close_hdr = False
        self._te = ""
        self._wrote_continue = False
        self.close_after = req.close

    def header(self) -> Header:
        h = self._header
        if h is None:
            h = self._header = Header()
        return h

    def write_header(self, code: int) -> None:
        if self._wrote_header:
            log.warning("http: superfluous response.WriteHeader call")
            return
        if not 100 <= code <= 999:
            raise ValueError(f"invalid WriteHeader code {code}")
        h = self._header
        if 100 <= code <= 199 and code != 101:
            # informational: goes out now, the real header comes later (Go 1.19)
            if code == 100:
                self._wrote_continue = True
            hdr = _serialize(h)[0] if h else b""
            self._conn.write(status_line(self._req.proto == "HTTP/1.1", code) + hdr + b"\r\n")
            return
        self._wrote_header = True
        self._status = code
        if h:
            # Go snapshots the header here: later changes to it are not sent
            (self._hdr, self._cl, self._has_date, self._has_ctype, self._close_hdr, self._te) = (
                _serialize(h)
            )

    @property
    def status(self) -> int:
        """The status written (200 until write_header or write)."""
        return self._status

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if not self._wrote_header:
            self.write_header(200)
        n = len(data)
        if not n:
            return 0
        status = self._status
        if status == 204 or status == 304 or status < 200:  # body_allowed_for_status
            raise ErrBodyNotAllowed()
        written = self._written + n
        if self._cl >= 0 and written > self._cl:
            raise ErrContentLength()
        self._written = written
        buf = self._buf
        if len(buf) + n <= BUFFER_BEFORE_CHUNKING:
            buf += data
            return n
        buf += data
        self._send(final=False, push=False)
        return n

    def flush(self) -> None:
        """Send the header and everything buffered now (Go's Flusher)."""
        if not self._wrote_header:
            self.write_header(200)
        self._send(final=False, push=True)

    def _send(self, final: bool, push: bool) -> None:
        """Frame the buffer (preceded by the header if it has not gone yet) into
        the pending output, and write that out when push or when it is large:
        like Go's bufio.Writer on the connection, so a response of a few
        chunks, and its last chunk, go out in one write."""
        buf = self._buf
        pending = self._pending
        if self._committed:
            if buf and not self._head:
                pending += b"%x\r\n%s\r\n" % (len(buf), buf) if self._chunking else buf
        else:
            pending += self._commit(buf, final)
            if buf and not self._head and body_allowed_for_status(self._status):
                pending += b"%x\r\n%s\r\n" % (len(buf), buf) if self._chunking else buf
        buf.clear()
        if pending and (push or len(pending) >= PENDING_MAX):
            out = bytes(pending)
            pending.clear()
            self._on_wire = True
            self._conn.write(out)

    def _commit(self, p: bytearray, final: bool) -> bytes:
        """The status line and header, deciding the framing as Go's
        chunkWriter.writeHeader does; p is the start of the body."""
        self._committed = True
        req = self._req
        code = self._status
        is11 = req.proto == "HTTP/1.1"
        allowed = body_allowed_for_status(code)
        body = req.body
        if not body.done:
            self._unread_body(body)
        out = [status_line(is11, code), self._hdr]
        if not self._has_date:
            out.append(_date_line())
        te = self._te
        if allowed and p and not self._has_ctype and not te:
            out.append(b"Content-Type: " + detect_content_type(p).encode() + b"\r\n")
        cl = self._cl
        if cl >= 0:
            if allowed or code == 304:
                out.append(b"Content-Length: %d\r\n" % cl)
        elif final and allowed and not te and not (self._head and not p):
            self._cl = len(p)
            out.append(b"Content-Length: %d\r\n" % len(p))
        elif self._head or not allowed:
            pass
        elif is11:
            if te == "identity":
                self.close_after = True
            else:
                self._chunking = True
                out.append(b"Transfer-Encoding: chunked\r\n")
        else:
            self.close_after = True
        conn = self._conn
        if self._close_hdr or conn.server._shutting:
            self.close_after = True
        if self.close_after:
            if is11 and not self._close_hdr:
                out.append(b"Connection: close\r\n")
        elif not is11 and self._cl >= 0:
            out.append(b"Connection: keep-alive\r\n")
        out.append(b"\r\n")
        return b"".join(out)

    def _unread_body(self, body: Body) -> None:
        """Go's rule for a body the handler left unread: a client still
        waiting for "100 Continue" gets none and the connection closes; else
        up to 256 KiB are read and dropped so the connection can be reused."""
        if body._continue is not None:
            body._continue = None
            self.close_after = True
            return
        if body._closed:
            body._buf.clear()
        try:
            while not body.done and body.nread <= MAX_POST_HANDLER_READ_BYTES:
                body._closed = False
                body.read(READ_SIZE)
        except (OSError, EOFError, ProtocolError, ValueError):
            self.close_after = True
            return
        finally:
            body._closed = True
        if not body.done:
            self.close_after = True

    def _send_continue(self) -> None:
        if not self._wrote_header and not self._wrote_continue:
            self._wrote_continue = True
            self._conn.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _finish(self) -> None:
        """The handler has returned: send what is left and end the message."""
        if not self._wrote_header:
            self.write_header(200)
        if not self._committed:
            self._send(final=True, push=True)
        else:
            if self._chunking:
                self._send(final=False, push=False)
                self._pending += b"0\r\n\r\n"
            self._send(final=False, push=True)
        cl = self._cl
        if (
            cl >= 0
            and cl != self._written
            and not self._head
            and body_allowed_for_status(self._status)
        ):
            self.close_after = True  # did not write what it declared: framing is lost


_INTERNAL_ERROR = (
    b"HTTP/1.1 500 Internal Server Error\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Connection: close\r\nContent-Length: 22\r\n\r\nInternal Server Error\n"
)


class _Conn:
    """One server connection and the goroutine serving it (Go's conn)."""

    __slots__ = (
        "_bg_data",
        "_bg_done",
        "_cancel",
        "_hdr_start",
        "_write_err",
        "created",
        "reader",
        "remote_addr",
        "rwc",
        "server",
        "state",
    )

    def __init__(self, server: Server, rwc: Any) -> None:
        self.server = server
        self.rwc = rwc
        self.state = STATE_NEW
        self.created = time.monotonic()
        try:
            self.remote_addr = str(rwc.remote_addr)
        except Exception:
            self.remote_addr = ""
        self.reader = RequestReader(rwc, server.max_header_bytes, self.remote_addr, self)
        self._cancel: Callable[[], None] | None = None
        self._bg_done: Any = None  # a channel closed when the background read ends
        self._bg_data = b""
        self._write_err: BaseException | None = None
        self._hdr_start = 0.0  # when the current request's header began (timeouts only)

    def write(self, data: bytes) -> None:
        try:
            self.rwc.write(data)
        except OSError as e:
            self._write_err = e
            if self._cancel is not None:
                self._cancel()
            raise

    def serve(self) -> None:
        srv = self.server
        handler = srv._handler_func
        reader = self.reader
        ready = reader.ready
        timeouts = srv._timeouts
        try:
            while True:
                if not ready and not self._read_request(timeouts):
                    return
                req = ready.popleft()
                self.state = STATE_ACTIVE
                if timeouts and srv.write_timeout:
                    self.rwc.set_write_deadline(time.monotonic() + srv.write_timeout)
                w = ResponseWriter(self, req)
                if req.body._reader is not None and req.expects_continue():
                    req.body._continue = w._send_continue
                try:
                    handler(w, req)
                    w._finish()
                except Exception as e:
                    self._handler_failed(w, req, e)
                    return
                finally:
                    req.body.close()
                    if self._cancel is not None:
                        self._end_context()
                if w.close_after or srv._shutting:
                    if not req.body.done:
                        self._close_write_and_wait()
                    return
                if not ready:
                    self.state = STATE_IDLE
        except OSError:
            return  # the client went away, or shutdown closed the connection
        finally:
            self.state = STATE_CLOSED
            srv._conns.discard(self)
            try:
                self.rwc.close()
            except OSError:
                pass

    def _read_request(self, timeouts: bool) -> bool:
        """Read until a request is ready; False when the connection should end
        (EOF, a timeout, or a bad request, which gets its error response)."""
        reader = self.reader
        rwc = self.rwc
        srv = self.server
        if timeouts:
            self._set_read_deadlines_idle()
        first = True
        while not reader.ready:
            if reader.error is not None:
                self._reject(reader.error)
                return False
            data = self._bg_data
            if data:
                self._bg_data = b""
            else:
                try:
                    data = rwc.read(READ_SIZE)
                except OSError:
                    return False  # timeouts and resets end the connection silently, as Go's
                if not data:
                    return False
            if first:
                first = False
                if self.state == STATE_NEW:
                    self.state = STATE_ACTIVE
                if timeouts:
                    self._set_read_deadline_header()
            reader.feed(data)
        if timeouts:
            rt = srv.read_timeout
            if rt:
                rwc.set_read_deadline(self._hdr_start + rt)
            elif srv.read_header_timeout:
                rwc.set_read_deadline(None)
        return True

    def _set_read_deadlines_idle(self) -> None:
        srv = self.server
        if self.state == STATE_NEW:
            self._set_read_deadline_header(self.created)
            return
        idle = srv.idle_timeout or srv.read_timeout
        if idle and not self.reader.in_progress():
            self.rwc.set_read_deadline(time.monotonic() + idle)
        else:
            self.rwc.set_read_deadline(None)

    def _set_read_deadline_header(self, start: float | None = None) -> None:
        srv = self.server
        t = time.monotonic() if start is None else start
        self._hdr_start = t
        d = srv.read_header_timeout or srv.read_timeout
        self.rwc.set_read_deadline(t + d if d else None)

    def _reject(self, err: ProtocolError) -> None:
        """Go's answer to an unreadable request: the error as plain text, then close."""
        text = str(err).encode()
        try:
            self.rwc.write(
                b"HTTP/1.1 "
                + text
                + b"\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
                + text
            )
        except OSError:
            return
        self._close_write_and_wait()

    def _close_write_and_wait(self) -> None:
        """Go's closeWriteAndWait: half-close, then give the client time to read
        the answer before the close, which would reset the connection (and lose
        the answer) while its unread request bytes sit in our buffer. Go sleeps
        500 ms; reading and dropping those bytes meanwhile makes the reset rarer."""
        rwc = self.rwc
        try:
            rwc.close_write()
            rwc.set_read_deadline(time.monotonic() + RST_AVOIDANCE_DELAY)
            while rwc.read(READ_SIZE):
                pass
        except OSError:
            pass

    def _handler_failed(self, w: ResponseWriter, req: Request, e: Exception) -> None:
        """A handler raised: log it (unless it is the client going away, a bad
        body, or ErrAbortHandler), answer 500 (400 for a bad body) if nothing
        was sent yet, and close."""
        if isinstance(e, ProtocolError):
            if not w._on_wire:
                self._reject(e)
            return
        reader = self.reader
        conn_err = (
            e is self._write_err or e is reader.read_err or (isinstance(e, EOFError) and reader.eof)
        )
        if not conn_err and not isinstance(e, ErrAbortHandler):
            log.error("http: panic serving %s: %s", self.remote_addr, e, exc_info=e)
        if not w._on_wire and not conn_err:  # what was framed but not sent is dropped
            try:
                self.rwc.write(_INTERNAL_ERROR)
            except OSError:
                pass

    # Request contexts: made on the first r.context() call, so requests that
    # never ask pay nothing. Cancelled when the handler returns, when a write
    # fails, when a background read sees the client close (started once the
    # body is read, as Go's startBackgroundRead), and when shutdown gives up.

    def request_context(self, req: Request) -> Any:
        ctx, cancel = gort.with_cancel(self.server._base_ctx())
        self._cancel = cancel
        body = req.body
        if body.done:
            self._start_background_read()
        else:
            body._on_done = self._start_background_read
        return ctx

    def _start_background_read(self) -> None:
        if self._bg_done is not None or self.reader.ready or self.reader.eof:
            return  # the next request is already here: the client is still there
        done = gort.chan()
        self._bg_done = done
        gort.go(self._background_read, done)

    def _background_read(self, done: Any) -> None:
        try:
            data = self.rwc.read(READ_SIZE)
        except TimeoutError:
            data = None  # aborted by _end_context
        except OSError:
            data = b""
        if data:
            self._bg_data = data
        elif data is not None:
            self.reader.eof = True
            cancel = self._cancel
            if cancel is not None:
                cancel()
        done.close()

    def _end_context(self) -> None:
        cancel = self._cancel
        self._cancel = None
        done = self._bg_done
        if done is not None:
            self._bg_done = None
            try:
                self.rwc.set_read_deadline(time.monotonic() - 1.0)  # Go's aLongTimeAgo
            except OSError:
                pass
            done.recv()
            try:
                self.rwc.set_read_deadline(None)
            except OSError:
                pass
        if cancel is not None:
            cancel()


class Server:
    """Go's http.Server: serve(ln), listen_and_serve(), shutdown(ctx), close().

    Timeouts are seconds (0 or None: none), with Go's meanings:
    read_header_timeout bounds reading a request's header (from its first
    byte, or from the accept); read_timeout the whole request, body
    included; write_timeout the response; idle_timeout the wait for the
    next request on a kept-alive connection (read_timeout when 0).
    """

    def __init__(
        self,
        addr: str = "",
        handler: Handler | HandlerFunc | None = None,
        *,
        read_header_timeout: float | None = None,
        read_timeout: float | None = None,
        write_timeout: float | None = None,
        idle_timeout: float | None = None,
        max_header_bytes: int | None = None,
    ) -> None:
        self.addr = addr
        self.handler = handler
        self.read_header_timeout = read_header_timeout or 0.0
        self.read_timeout = read_timeout or 0.0
        self.write_timeout = write_timeout or 0.0
        self.idle_timeout = idle_timeout or 0.0
        self.max_header_bytes = max_header_bytes or DEFAULT_MAX_HEADER_BYTES
        self._shutting = False
        self._listeners: set[Any] = set()
        self._conns: set[_Conn] = set()
        self._ctx: Any = None
        self._ctx_cancel: Callable[[], None] | None = None
        self._handler_func: HandlerFunc = self._resolve_handler()
        self._timeouts = False

    def _resolve_handler(self) -> HandlerFunc:
        if self.handler is None:
            from .servemux import default_serve_mux

            return default_serve_mux.serve_http
        return as_handler_func(self.handler)

    def _base_ctx(self) -> Any:
        """The parent of every request context; shutdown cancels it when it gives up."""
        if self._ctx is None:
            self._ctx, self._ctx_cancel = gort.with_cancel(gort.background())
        return self._ctx

    def listen_and_serve(self) -> ServerClosedError:
        """Listen on addr (":http" when empty) and serve; returns ErrServerClosed
        after shutdown or close, as Go's returns it."""
        if self._shutting:
            return ErrServerClosed
        addr = self.addr or ":80"
        from .. import net

        ln = net.listen("tcp", addr)
        return self.serve(ln)

    def serve(self, ln: Any) -> ServerClosedError:
        """Accept connections on ln, a goroutine for each; returns ErrServerClosed
        once shutdown or close has closed ln. Other accept errors raise, except
        the temporary ones (out of descriptors...), which it retries with Go's
        backoff: 5 ms doubling to 1 s."""
        self._handler_func = self._resolve_handler()
        self._timeouts = bool(
            self.read_header_timeout or self.read_timeout or self.write_timeout or self.idle_timeout
        )
        if self._shutting:
            ln.close()
            return ErrServerClosed
        self._listeners.add(ln)
        delay = 0.0
        try:
            while True:
                try:
                    rwc = ln.accept()
                except OSError as e:
                    if self._shutting:
                        return ErrServerClosed
                    if e.errno not in _TEMPORARY_ACCEPT_ERRORS:
                        raise
                    delay = min(delay * 2, 1.0) if delay else 0.005
                    log.error("http: Accept error: %s; retrying in %gms", e, delay * 1000)
                    gort.sleep(delay)
                    continue
                delay = 0.0
                c = _Conn(self, rwc)
                self._conns.add(c)
                if self._shutting:
                    c.rwc.close()
                    self._conns.discard(c)
                    continue
                gort.go(c.serve)
        finally:
            self._listeners.discard(ln)

    def _close_listeners(self) -> None:
        for ln in list(self._listeners):
            try:
                ln.close()
            except OSError:
                pass

    def _close_idle_conns(self) -> bool:
        """Close the idle connections; True when none is active (Go's closeIdleConns)."""
        quiescent = True
        now = time.monotonic()
        for c in list(self._conns):
            st = c.state
            if st == STATE_NEW and c.created < now - 5.0:
                st = STATE_IDLE  # a connection that never sent a request
            if st == STATE_CLOSED:
                continue
            if st != STATE_IDLE:
                quiescent = False
                continue
            try:
                c.rwc.close()
            except OSError:
                pass
            self._conns.discard(c)
        return quiescent

    def shutdown(self, ctx: Any = None) -> BaseException | None:
        """Go's graceful Shutdown: stop accepting, close idle connections, and
        wait for the active ones to finish (each closes after its response).
        Returns None once all are done, or ctx's error if ctx ends first; then
        the remaining requests' contexts are cancelled."""
        self._shutting = True
        self._close_listeners()
        base = 0.001
        done = ctx.done() if ctx is not None else gort.nilchan
        while True:
            if self._close_idle_conns():
                return None
            interval = base + random.random() * base / 10
            base = min(base * 2, 0.5)
            i, _ = gort.select(done.recv, gort.after(interval).recv)
            if i == 0:
                if self._ctx_cancel is not None:
                    self._ctx_cancel()
                return ctx.err()  # type: ignore[no-any-return]

    def close(self) -> None:
        """Close the listeners and every connection now (Go's Close)."""
        self._shutting = True
        self._close_listeners()
        for c in list(self._conns):
            try:
                c.rwc.close()
            except OSError:
                pass
        self._conns.clear()
        if self._ctx_cancel is not None:
            self._ctx_cancel()


_TEMPORARY_ACCEPT_ERRORS = frozenset(
    {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM, errno.ECONNABORTED, errno.EAGAIN}
)


def listen_and_serve(addr: str, handler: Handler | HandlerFunc | None = None) -> ServerClosedError:
    """Go's http.ListenAndServe."""
    return Server(addr=addr, handler=handler).listen_and_serve()
