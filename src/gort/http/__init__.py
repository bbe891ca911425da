"""gort.http: Go's net/http server model, a goroutine per connection.

Handlers are plain blocking functions ``handler(w, r)`` (or objects with
``serve_http(w, r)``), as in Go; ``wsgi(app)`` runs a WSGI application the
same way. ``python -m gort.http`` serves a module's app, with ``--workers N``
processes sharing the port.
"""

from __future__ import annotations

from .header import Header, canonical_header_key
from .request import URL, Body, ProtocolError, Request
from .servemux import (
    Pattern,
    ServeMux,
    default_serve_mux,
    error,
    handle,
    handle_func,
    not_found,
    redirect,
)
from .server import (
    ErrAbortHandler,
    ErrBodyNotAllowed,
    ErrContentLength,
    ErrServerClosed,
    Handler,
    HandlerFunc,
    ResponseWriter,
    Server,
    ServerClosedError,
    listen_and_serve,
)
from .sniff import detect_content_type
from .status import status_text
from .wsgi import wsgi

__all__ = [
    "URL",
    "Body",
    "ErrAbortHandler",
    "ErrBodyNotAllowed",
    "ErrContentLength",
    "ErrServerClosed",
    "Handler",
    "HandlerFunc",
    "Header",
    "Pattern",
    "ProtocolError",
    "Request",
    "ResponseWriter",
    "ServeMux",
    "Server",
    "ServerClosedError",
    "canonical_header_key",
    "default_serve_mux",
    "detect_content_type",
    "error",
    "handle",
    "handle_func",
    "listen_and_serve",
    "not_found",
    "redirect",
    "status_text",
    "wsgi",
]
