"""A small JSON API on gort.http: a goroutine per connection, plain blocking handlers.

Routes (Go 1.22 ServeMux patterns):
  GET    /items          every item
  POST   /items          create one from {"name": ...}; 201 and the item
  GET    /items/{id}     one item, or 404
  DELETE /items/{id}     remove it; 204

``python -m gort examples/http_api.py`` starts the server on a free port,
exercises it with a real HTTP client (urllib, run off the processor with
gort.syscall), prints what it got, and shuts down gracefully.
``python -m gort.http examples.http_api:mux --bind 127.0.0.1:8000`` serves it.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import gort
import gort.http as http
from gort import net

items: dict[int, dict[str, Any]] = {}
mu = gort.Mutex()
next_id = [1]


def reply(w: http.ResponseWriter, code: int, value: Any) -> None:
    w.header()["Content-Type"] = "application/json"
    w.write_header(code)
    w.write(json.dumps(value).encode())


def list_items(w: http.ResponseWriter, r: http.Request) -> None:
    with mu:
        reply(w, 200, [items[k] for k in sorted(items)])


def create_item(w: http.ResponseWriter, r: http.Request) -> None:
    try:
        body = json.loads(r.body.read())
        name = body["name"]
    except (ValueError, KeyError, TypeError):
        http.error(w, "want a JSON object with a name", 400)
        return
    with mu:
        item = {"id": next_id[0], "name": name}
        items[next_id[0]] = item
        next_id[0] += 1
    w.header()["Location"] = f"/items/{item['id']}"
    reply(w, 201, item)


def get_item(w: http.ResponseWriter, r: http.Request) -> None:
    with mu:
        item = items.get(_id(r))
    if item is None:
        http.not_found(w, r)
        return
    reply(w, 200, item)


def delete_item(w: http.ResponseWriter, r: http.Request) -> None:
    with mu:
        found = items.pop(_id(r), None)
    w.write_header(204 if found else 404)


def _id(r: http.Request) -> int:
    v = r.path_value("id")
    return int(v) if v.isdigit() else -1


mux = http.ServeMux()
mux.handle_func("GET /items", list_items)
mux.handle_func("POST /items", create_item)
mux.handle_func("GET /items/{id}", get_item)
mux.handle_func("DELETE /items/{id}", delete_item)


def call(base: str, method: str, path: str, body: Any = None) -> str:
    """One request with urllib (a blocking client, so it runs in gort.syscall)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return f"{method} {path} -> {resp.status} {resp.read().decode()}"
    except urllib.error.HTTPError as e:
        return f"{method} {path} -> {e.code} {e.read().decode().strip()}"


def main() -> None:
    ln = net.listen("tcp", "127.0.0.1:0")
    srv = http.Server(handler=mux, read_header_timeout=5.0)
    served = gort.chan()
    gort.go(lambda: served.send(srv.serve(ln)))
    base = f"http://{ln.addr}"
    for method, path, body in [
        ("POST", "/items", {"name": "gopher"}),
        ("POST", "/items", {"name": "python"}),
        ("GET", "/items", None),
        ("GET", "/items/2", None),
        ("DELETE", "/items/1", None),
        ("GET", "/items/1", None),
        ("POST", "/items", {"nom": "x"}),
        ("PUT", "/items/2", None),
    ]:
        print(gort.syscall(call, base, method, path, body))
    ctx, cancel = gort.with_timeout(gort.background(), 5.0)
    err = srv.shutdown(ctx)
    cancel()
    print(f"shutdown: {err}; serve returned: {served.recv()}")


if __name__ == "__main__":
    gort.run(main)
