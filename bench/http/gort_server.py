"""gort.http for the HTTP benchmarks: hello-world at /, a 4 KiB JSON body at /json.

python bench/http/gort_server.py PORT [hello|json|flask]
"""

from __future__ import annotations

import sys

import gort
import gort.http as http
from gort import net

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from payload import HELLO, JSON_BODY


def hello(w: http.ResponseWriter, r: http.Request) -> None:
    if r.url.escaped == "/json":
        w.header()["Content-Type"] = "application/json"
        w.write(JSON_BODY)
    else:
        w.header()["Content-Type"] = "text/plain"
        w.write(HELLO)


handler = hello  # python -m gort.http gort_server:handler


def main() -> None:
    port = int(sys.argv[1])
    kind = sys.argv[2] if len(sys.argv) > 2 else "hello"
    handler = hello
    if kind == "flask":
        from flask_app import app

        handler = http.wsgi(app)
    ln = net.listen("tcp", f"127.0.0.1:{port}", backlog=4096)
    print("ready", flush=True)
    http.Server(handler=handler).serve(ln)


if __name__ == "__main__":
    gort.run(main, procs=1)
