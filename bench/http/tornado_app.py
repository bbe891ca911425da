"""Tornado: hello-world at /, 4 KiB JSON at /json.  python tornado_app.py PORT"""

from __future__ import annotations

import asyncio
import sys

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import tornado.web
from payload import HELLO, JSON_BODY


class Hello(tornado.web.RequestHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/plain")
        self.write(HELLO)


class Json(tornado.web.RequestHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.write(JSON_BODY)


async def main() -> None:
    app = tornado.web.Application([("/", Hello), ("/json", Json)])
    app.listen(int(sys.argv[1]), "127.0.0.1", backlog=4096)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
