"""The app the HTTP server tests serve in a subprocess (python -m gort.http http_app:mux)."""

from __future__ import annotations

import os

import gort
import gort.http as http

mux = http.ServeMux()


def hello(w: http.ResponseWriter, r: http.Request) -> None:
    w.header()["Content-Type"] = "text/plain"
    w.write(b"hello")


def echo(w: http.ResponseWriter, r: http.Request) -> None:
    data = r.body.read()
    w.header()["X-Body-Len"] = str(len(data))
    w.header()["X-Content-Length"] = str(r.content_length)
    w.write(data)


def stream(w: http.ResponseWriter, r: http.Request) -> None:
    n = int(r.url.query().get("n", ["5"])[0])
    for i in range(n):
        w.write(b"part %d\n" % i)
        w.flush()


def pid(w: http.ResponseWriter, r: http.Request) -> None:
    w.write(str(os.getpid()).encode())


def slow(w: http.ResponseWriter, r: http.Request) -> None:
    print(f"slow request started in {os.getpid()}", flush=True)
    gort.sleep(float(r.url.query().get("s", ["0.5"])[0]))
    w.write(b"done")


def boom(w: http.ResponseWriter, r: http.Request) -> None:
    raise RuntimeError("boom")


def big(w: http.ResponseWriter, r: http.Request) -> None:
    w.write(bytes(range(256)) * 400)


for pattern, fn in [
    ("GET /hello", hello),
    ("POST /echo", echo),
    ("PUT /echo", echo),
    ("GET /stream", stream),
    ("GET /pid", pid),
    ("GET /slow", slow),
    ("GET /boom", boom),
    ("GET /big", big),
]:
    mux.handle_func(pattern, fn)


def _flask_app() -> object:
    import flask

    app = flask.Flask("http_app")

    @app.get("/greet/<name>")
    def greet(name: str) -> object:
        return flask.jsonify(greeting=f"hello {name}", pid=os.getpid())

    @app.post("/upper")
    def upper() -> object:
        return flask.request.get_data().upper()

    return app


try:
    flask_app = _flask_app()
except ImportError:  # flask is a dev dependency
    flask_app = None
