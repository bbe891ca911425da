"""PEP 3333: a WSGI application as a gort handler.

Each request runs the application on its connection's goroutine, so a
blocking app is a goroutine that parks, as a Go handler is. ``wsgi.input``
is the request body, streamed (and terminated: ``wsgi.input_terminated``, so
a chunked body can be read to its end without a Content-Length). The
response header goes out with the first non-empty body chunk (or at the end),
as PEP 3333 requires; the ``write()`` callable and iterables with ``close()``
are honoured.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote_to_bytes

from .request import Request
from .server import ResponseWriter

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# the environ keys of the common request headers (others are computed)
_HTTP_KEYS: dict[str, str] = {}


def _environ_key(name: str) -> str:
    key = _HTTP_KEYS.get(name)
    if key is None:
        key = "HTTP_" + name.upper().replace("-", "_")
        if len(_HTTP_KEYS) < 1000:
            _HTTP_KEYS[name] = key
    return key


class _StartResponse:
    """start_response and the state it shares with the adapter (one per request)."""

    __slots__ = ("code", "headers", "sent", "w")

    def __init__(self, w: ResponseWriter) -> None:
        self.w = w
        self.code = 0
        self.headers: list[tuple[str, str]] | None = None
        self.sent = False  # the header has been handed to the ResponseWriter

    def __call__(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self.sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.headers is not None:
            raise AssertionError("start_response called a second time without exc_info")
        try:
            self.code = int(status[:3])
        except ValueError:
            raise ValueError(f"wsgi: invalid status {status!r}") from None
        self.headers = headers
        return self.write

    def send_header(self) -> None:
        if self.headers is None:
            raise AssertionError("wsgi: the application returned before calling start_response")
        self.sent = True
        w = self.w
        h = w.header()
        for k, v in self.headers:
            h.add(k, v)
        w.write_header(self.code)

    def write(self, data: bytes) -> None:
        """PEP 3333's write() callable: the data goes out now."""
        if not self.sent:
            self.send_header()
        if data:
            self.w.write(data)
            self.w.flush()


def wsgi(app: WSGIApp, *, multiprocess: bool = False) -> Callable[[ResponseWriter, Request], None]:
    """A gort handler that runs the WSGI application app (Flask, Django, ...)."""
    base = {
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": multiprocess,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
        "SCRIPT_NAME": "",
    }

    def handler(w: ResponseWriter, r: Request) -> None:
        environ = base.copy()
        url = r.url
        escaped = url.escaped
        environ["REQUEST_METHOD"] = r.method
        environ["PATH_INFO"] = (
            unquote_to_bytes(escaped).decode("latin-1") if "%" in escaped else escaped
        )
        environ["QUERY_STRING"] = url.raw_query
        environ["SERVER_PROTOCOL"] = r.proto
        environ["wsgi.input"] = r.body
        host = r.host
        name, _, port = host.rpartition(":") if host[-1:] != "]" else (host, "", "")
        if not name or not port.isdigit():
            name, port = host, "80"
        environ["SERVER_NAME"] = name
        environ["SERVER_PORT"] = port
        ra = r.remote_addr
        rhost, _, rport = ra.rpartition(":")
        environ["REMOTE_ADDR"] = rhost.strip("[]") if rhost else ra
        environ["REMOTE_PORT"] = rport
        for k, vs in r.header._m.items():
            if k == "Content-Type":
                environ["CONTENT_TYPE"] = vs[0]
            elif k == "Content-Length":
                environ["CONTENT_LENGTH"] = vs[0]
            else:
                environ[_environ_key(k)] = vs[0] if len(vs) == 1 else ",".join(vs)
        sr = _StartResponse(w)
        result = app(environ, sr)
        try:
            for data in result:
                if data:
                    if not sr.sent:
                        sr.send_header()
                    w.write(data)
            if not sr.sent:
                sr.send_header()
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()

    return handler
