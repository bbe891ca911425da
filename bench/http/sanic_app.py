"""Sanic, one process: hello-world at /, 4 KiB JSON at /json.  python sanic_app.py PORT"""

from __future__ import annotations

import sys

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from payload import HELLO, JSON_BODY
from sanic import Sanic
from sanic.response import raw

app = Sanic("bench")


@app.get("/")
async def hello(request: object) -> object:
    return raw(HELLO, content_type="text/plain")


@app.get("/json")
async def js(request: object) -> object:
    return raw(JSON_BODY, content_type="application/json")


if __name__ == "__main__":
    app.run(
        host="127.0.0.1",
        port=int(sys.argv[1]),
        single_process=True,
        access_log=False,
        debug=False,
        backlog=4096,
    )
