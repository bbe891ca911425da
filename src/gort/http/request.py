"""Requests and their bodies: Go's http.Request and the server side of its
readRequest (request.go, server.go), with httptools doing the parsing.

``RequestReader`` owns one connection's httptools parser. Bytes go in through
``feed``; each request whose header is complete comes out on ``ready``, in
order, so pipelined requests queue up behind the one being served. A body
arrives through ``on_body`` into its Request's buffer; a handler that reads
past what has arrived makes the reader read the connection again (``fill``),
so bodies stream rather than being buffered whole. A parse error is held
until every request parsed before it has been served (``error``).

Only the connection's goroutine touches a reader, its parser and the
buffers it fills: none of this is shared between goroutines.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import httptools

from .header import Header

if TYPE_CHECKING:
    from .server import _Conn

READ_SIZE = 65536
DEFAULT_MAX_HEADER_BYTES = 1 << 20


class Source(Protocol):
    """What a RequestReader reads from: gort.net's Conn (or a test double)."""

    def read(self, n: int) -> bytes: ...


class ProtocolError(Exception):
    """A request the server answers with code and closes the connection on.

    ``str()`` is Go's public text ("400 Bad Request: missing required Host header").
    """

    def __init__(self, code: int, reason: str = "") -> None:
        from .status import status_text

        text = f"{code} {status_text(code)}"
        super().__init__(f"{text}: {reason}" if reason else text)
        self.code = code


ErrBodyReadAfterClose = "http: invalid Read on closed Body"


class URL:
    """The request target, as Go's url.URL: ``path`` is unescaped, ``raw_query`` is not."""

    __slots__ = ("_path", "escaped", "host", "raw_query", "scheme")

    def __init__(self, escaped: str, raw_query: str, scheme: str = "", host: str = "") -> None:
        self.escaped = escaped  # the path as sent, percent-escapes kept
        self.raw_query = raw_query
        self.scheme = scheme
        self.host = host
        self._path: str | None = None

    @property
    def path(self) -> str:
        """The unescaped path."""
        p = self._path
        if p is None:
            p = self._path = unquote(self.escaped) if "%" in self.escaped else self.escaped
        return p

    def escaped_path(self) -> str:
        """The path with its escapes, as sent (Go's EscapedPath)."""
        return self.escaped

    def query(self) -> dict[str, list[str]]:
        """The query string parsed (Go's Query; blank values kept)."""
        return parse_qs(self.raw_query, keep_blank_values=True)

    def request_uri(self) -> str:
        """Path and query, as on the request line (Go's RequestURI)."""
        return f"{self.escaped}?{self.raw_query}" if self.raw_query else self.escaped

    def __str__(self) -> str:
        prefix = f"{self.scheme}://{self.host}" if self.scheme else ""
        return prefix + self.request_uri()

    def __repr__(self) -> str:
        return f"URL({str(self)!r})"


def parse_target(target: bytes) -> URL:
    """The URL of a request target: origin form ("/a?b"), absolute form, or "*"."""
    t = target.decode("latin-1")
    if t[:1] == "/" or t == "*":
        path, _, query = t.partition("?")
        return URL(path, query)
    parts = urlsplit(t)
    if not parts.scheme or not parts.netloc:
        raise ProtocolError(400, "invalid request target")
    return URL(parts.path or "/", parts.query, parts.scheme, parts.netloc)


class Body:
    """A request body as a file-like reader (Go's Request.Body).

    Reads return what has arrived and read the connection for more only when
    nothing has; ``read()`` with no size reads to the end. EOF before the
    declared length (or the last chunk) raises EOFError("unexpected EOF").
    """

    __slots__ = ("_buf", "_closed", "_continue", "_on_done", "_reader", "done", "nread")

    def __init__(self, reader: RequestReader | None) -> None:
        self._buf = bytearray()
        self._reader = reader
        self.done = reader is None  # the parser has seen the end of this message
        self._closed = False
        # sends "100 Continue" before the first read that must wait for the client
        self._continue: Callable[[], None] | None = None
        # run once when the parser reaches the end of the body
        self._on_done: Callable[[], None] | None = None
        self.nread = 0

    def _wait(self) -> None:
        """Get more bytes of this body (or its end) from the connection."""
        if self._closed:
            raise ValueError(ErrBodyReadAfterClose)
        cont = self._continue
        if cont is not None:
            self._continue = None
            cont()
        reader = self._reader
        assert reader is not None
        reader.fill(self)

    def read(self, n: int = -1) -> bytes:
        buf = self._buf
        if n is None or n < 0:
            while not self.done:
                self._wait()
            out = bytes(buf)
            buf.clear()
            self.nread += len(out)
            return out
        while not buf and not self.done and n:
            self._wait()
        if self._closed:
            raise ValueError(ErrBodyReadAfterClose)
        out = bytes(buf[:n])
        del buf[:n]
        self.nread += len(out)
        return out

    def readinto(self, b: Any) -> int:
        mv = memoryview(b).cast("B")
        data = self.read(len(mv))
        mv[: len(data)] = data
        return len(data)

    def readline(self, limit: int = -1) -> bytes:
        buf = self._buf
        while True:
            i = buf.find(b"\n")
            if i >= 0 or self.done or (0 <= limit <= len(buf)):
                break
            self._wait()
        end = len(buf) if i < 0 else i + 1
        if limit >= 0:
            end = min(end, limit)
        out = bytes(buf[:end])
        del buf[:end]
        self.nread += len(out)
        return out

    def readlines(self, hint: int = -1) -> list[bytes]:
        return list(self)

    def __iter__(self) -> Iterator[bytes]:
        while True:
            line = self.readline()
            if not line:
                return
            yield line

    def close(self) -> None:
        """Further reads raise; the server discards what is left (Go's Close)."""
        self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed

    def readable(self) -> bool:
        return True


class _NoBody(Body):
    """The body of a request without one (Go's http.NoBody): shared, always at EOF."""

    __slots__ = ()

    def read(self, n: int = -1) -> bytes:
        return b""

    def readline(self, limit: int = -1) -> bytes:
        return b""

    def close(self) -> None:
        pass


NO_BODY: Body = _NoBody(None)


class Request:
    """An HTTP request as a handler receives it (Go's http.Request, server side)."""

    __slots__ = (
        "_conn",
        "_ctx",
        "_path_values",
        "body",
        "close",
        "content_length",
        "header",
        "host",
        "method",
        "pattern",
        "proto",
        "remote_addr",
        "transfer_encoding",
        "url",
    )

    def __init__(self, method: str, url: URL, proto: str, header: Header) -> None:
        self.method = method
        self.url = url
        self.proto = proto
        self.header = header
        self.body = NO_BODY
        self.content_length = 0  # -1: unknown (chunked), as Go's
        self.transfer_encoding: list[str] | tuple[()] = ()
        self.close = False  # the client asked to close after this request
        self.host = ""
        self.remote_addr = ""
        self.pattern = ""  # the ServeMux pattern that matched (Go 1.23)
        self._path_values: dict[str, str] | None = None
        self._conn: _Conn | None = None
        self._ctx: Any = None

    @property
    def proto_major(self) -> int:
        return 1

    @property
    def proto_minor(self) -> int:
        return 1 if self.proto == "HTTP/1.1" else 0

    def context(self) -> Any:
        """The request's context: cancelled when the client goes away, when the
        handler returns, or when the server's shutdown gives up waiting."""
        ctx = self._ctx
        if ctx is None:
            conn = self._conn
            if conn is None:
                import gort

                ctx = self._ctx = gort.background()
            else:
                ctx = self._ctx = conn.request_context(self)
        return ctx

    def with_context(self, ctx: Any) -> Request:
        """A shallow copy carrying ctx (Go's WithContext)."""
        r = Request(self.method, self.url, self.proto, self.header)
        for name in Request.__slots__:
            setattr(r, name, getattr(self, name))
        r._ctx = ctx
        return r

    def path_value(self, name: str) -> str:
        """The value of the {name} wildcard the ServeMux matched, "" if none (Go 1.22)."""
        pv = self._path_values
        return pv.get(name, "") if pv is not None else ""

    def set_path_value(self, name: str, value: str) -> None:
        if self._path_values is None:
            self._path_values = {}
        self._path_values[name] = value

    @property
    def request_uri(self) -> str:
        return self.url.request_uri()

    def expects_continue(self) -> bool:
        return (
            self.proto_minor == 1
            and (self.header.get("Expect", "") or "").lower() == "100-continue"
        )

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.url.request_uri()} {self.proto}>"


_methods: dict[bytes, str] = {}
_PROTOS = {"1.1": "HTTP/1.1", "1.0": "HTTP/1.0"}


class RequestReader:
    """One connection's parser and the requests it has produced (see the module doc)."""

    __slots__ = (
        "_body",
        "_hdr_fields",
        "_hdr_wire",
        "_header",
        "_in_hdr",
        "_parser",
        "_url",
        "conn",
        "eof",
        "error",
        "limit",
        "read_err",
        "ready",
        "remote_addr",
        "src",
    )

    def __init__(
        self,
        src: Source,
        max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
        remote_addr: str = "",
        conn: _Conn | None = None,
    ) -> None:
        self.src = src
        self.remote_addr = remote_addr
        self.conn = conn
        # Go lets a request's header run 4096 bytes past max_header_bytes
        self.limit = max_header_bytes + 4096
        self.ready: deque[Request] = deque()
        self.error: ProtocolError | None = None
        self.eof = False
        self.read_err: OSError | None = None  # what a body read got from the connection
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._header: Header = Header()
        self._body: Body | None = None  # the body of the message being parsed
        self._in_hdr = False  # a message has begun and its header is not complete
        self._hdr_fields = 0  # bytes of the request line and fields so far
        self._hdr_wire = 0  # bytes fed while the header stayed incomplete

    # httptools callbacks: the parser calls these during feed_data.

    def on_message_begin(self) -> None:
        self._url = b""
        self._header = Header()
        self._in_hdr = True
        self._hdr_fields = 0
        self._hdr_wire = 0

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._hdr_fields += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._hdr_fields += len(name) + len(value) + 4
        self._header._add_raw(name, value)

    def on_headers_complete(self) -> None:
        self._in_hdr = False
        if self.error is not None:
            return  # nothing after a bad request is served
        if self._hdr_fields > self.limit:
            self._fail(ProtocolError(431))
            return
        p = self._parser
        m = p.get_method()
        method = _methods.get(m)
        if method is None:
            method = m.decode("latin-1")
            if len(_methods) < 64:
                _methods[m] = method
        version = p.get_http_version()
        header = self._header
        target = self._url
        try:
            if target[:1] == b"/" and b"?" not in target:
                url = URL(target.decode("latin-1"), "")  # the common case, inline
            else:
                url = parse_target(target)
        except ProtocolError as e:
            self._fail(e)
            return
        req = Request(method, url, _PROTOS.get(version) or "HTTP/" + version, header)
        req.remote_addr = self.remote_addr
        req.close = not p.should_keep_alive()
        req._conn = self.conn
        m_ = header._m
        hosts = m_.get("Host")
        if hosts is None:
            if version == "1.1" and not req.url.host:
                self._fail(ProtocolError(400, "missing required Host header"))
                return
            req.host = req.url.host
        elif len(hosts) > 1:
            self._fail(ProtocolError(400, "too many Host headers"))
            return
        else:
            req.host = req.url.host or hosts[0]
        te = m_.get("Transfer-Encoding")
        cl = m_.get("Content-Length")
        if te is not None:
            req.transfer_encoding = ["chunked"]
            req.content_length = -1
            body = Body(self)
        elif cl is not None:
            n = int(cl[0])  # llhttp has checked it: digits only, exactly one field
            req.content_length = n
            if not n:
                self.ready.append(req)
                return
            body = Body(self)
        else:
            self.ready.append(req)
            return
        req.body = body
        self._body = body
        self.ready.append(req)

    def on_body(self, data: bytes) -> None:
        body = self._body
        if body is not None and not body._closed:
            body._buf += data

    def on_message_complete(self) -> None:
        body = self._body
        if body is not None:
            body.done = True
            self._body = None
            if body._on_done is not None:
                body._on_done()

    def _fail(self, err: ProtocolError) -> None:
        if self.error is None:
            self.error = err

    def feed(self, data: bytes) -> None:
        """Parse data; complete requests go to ready, a bad one to error."""
        if self.error is not None:
            return
        in_hdr = self._in_hdr
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # Upgrade and CONNECT: served as ordinary requests, then the
            # connection closes (no hijacking: docs/api.md).
            for req in self.ready:
                req.close = True
            self._fail(ProtocolError(400, "upgrade not supported"))
        except httptools.HttpParserError as e:
            self._fail(ProtocolError(400, _reason(e)))
        if self._in_hdr:
            if in_hdr:
                self._hdr_wire += len(data)
            if self._hdr_wire > self.limit or self._hdr_fields > self.limit:
                self._fail(ProtocolError(431))
        elif self._hdr_fields > self.limit:
            self._fail(ProtocolError(431))

    def fill(self, body: Body) -> None:
        """Read the connection once for body (Body._wait's slow path)."""
        if self.error is not None and not self.ready:
            raise self.error
        try:
            data = self.src.read(READ_SIZE)
        except OSError as e:
            self.read_err = e  # a timeout or a reset: the connection is done
            raise
        if not data:
            self.eof = True
            raise EOFError("unexpected EOF")
        self.feed(data)
        if not body.done and not body._buf and self.error is not None:
            raise self.error

    def in_progress(self) -> bool:
        """Bytes of a request that is not complete yet have been read."""
        return self._in_hdr


def _reason(e: Exception) -> str:
    text = str(e)
    return text if text.isascii() and len(text) < 100 else "malformed request"
