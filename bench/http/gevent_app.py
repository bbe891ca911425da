"""gevent.pywsgi with a bare WSGI app: hello-world at /, 4 KiB JSON at /json."""

from __future__ import annotations

import sys
from typing import Any

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from gevent.pywsgi import WSGIServer
from payload import HELLO, JSON_BODY

_TEXT = [("Content-Type", "text/plain"), ("Content-Length", str(len(HELLO)))]
_JSON = [("Content-Type", "application/json"), ("Content-Length", str(len(JSON_BODY)))]


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    if environ["PATH_INFO"] == "/json":
        start_response("200 OK", _JSON)
        return [JSON_BODY]
    start_response("200 OK", _TEXT)
    return [HELLO]


if __name__ == "__main__":
    WSGIServer(("127.0.0.1", int(sys.argv[1])), app, log=None, backlog=4096).serve_forever()
