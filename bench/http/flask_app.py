"""The Flask hello app served through gort's WSGI and through gunicorn's gevent worker."""

from __future__ import annotations

from flask import Flask

app = Flask("bench")


@app.get("/")
def hello() -> str:
    return "Hello, World!"
