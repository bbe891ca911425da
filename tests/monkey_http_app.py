"""A WSGI app for `python -m gort.http --patch` (tests/test_monkey_accept.py):
each request sleeps 0.3 s in time.sleep and answers whether socket is patched."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import gort.monkey


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    time.sleep(0.3)  # patched: parks the request's goroutine
    body = str(gort.monkey.is_patched("socket")).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
