"""A bare ASGI app for uvicorn (httptools, uvloop): hello-world at /, 4 KiB JSON at /json."""

from __future__ import annotations

import sys
from typing import Any

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from payload import HELLO, JSON_BODY

_TEXT = [(b"content-type", b"text/plain"), (b"content-length", str(len(HELLO)).encode())]
_JSON = [(b"content-type", b"application/json"), (b"content-length", str(len(JSON_BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    js = scope["path"] == "/json"
    await send({"type": "http.response.start", "status": 200, "headers": _JSON if js else _TEXT})
    await send({"type": "http.response.body", "body": JSON_BODY if js else HELLO})
