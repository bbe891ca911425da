"""Go 1.22 ServeMux patterns: precedence, wildcards, 405 with Allow, redirects,
conflicts; and the WSGI adapter (PEP 3333), over an in-memory connection."""

from __future__ import annotations

from typing import Any

import pytest

import gort.http as http
from httpfake import responses, serve


def tagged(tag: str) -> Any:
    def h(w: http.ResponseWriter, r: http.Request) -> None:
        vals = ",".join(f"{k}={v}" for k, v in sorted((r._path_values or {}).items()))
        w.write(f"{tag}|{r.pattern}|{vals}".encode())

    return h


def get(
    mux: http.ServeMux, target: str, method: str = "GET", host: str = "x"
) -> tuple[int, Any, str]:
    req = f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    conn = serve(mux, req)
    [(code, hdr, body)] = responses(bytes(conn.out), methods=[method])
    return code, hdr, body.decode()


@pytest.fixture
def mux() -> http.ServeMux:
    m = http.ServeMux()
    for p in [
        "/",
        "GET /items/",
        "GET /items/{id}",
        "GET /items/{id}/edit",
        "POST /items/{id}",
        "GET /items/new",
        "/files/{path...}",
        "GET /exact/{$}",
        "example.com/",
        "DELETE /items/{id}",
        "/a/b",
    ]:
        m.handle_func(p, tagged(p))
    return m


@pytest.mark.parametrize(
    ("target", "method", "host", "want"),
    [
        ("/", "GET", "x", "/||"),
        ("/nothing/here", "GET", "x", "/||"),
        ("/items/", "GET", "x", "GET /items/||"),
        ("/items/42", "GET", "x", "GET /items/{id}||id=42"),
        ("/items/new", "GET", "x", "GET /items/new||"),  # literal beats wildcard
        ("/items/42/edit", "GET", "x", "GET /items/{id}/edit||id=42"),
        ("/items/42/other", "GET", "x", "GET /items/||"),  # trailing slash catches the rest
        ("/items/42", "POST", "x", "POST /items/{id}||id=42"),
        ("/items/42", "HEAD", "x", ""),  # GET serves HEAD (no body)
        ("/files/a/b/c.txt", "GET", "x", "/files/{path...}||path=a/b/c.txt"),
        ("/files/", "PUT", "x", "/files/{path...}||path="),
        ("/exact/", "GET", "x", "GET /exact/{$}||"),
        ("/exact/more", "GET", "x", "/||"),
        ("/anything", "GET", "example.com:8080", "example.com/||"),  # host beats none
        ("/items/a%2Fb", "GET", "x", "GET /items/{id}||id=a/b"),  # escaped slash stays in
    ],
)
def test_most_specific_pattern_wins(
    mux: http.ServeMux, target: str, method: str, host: str, want: str
) -> None:
    code, _, body = get(mux, target, method, host)
    assert code == 200
    if method != "HEAD":
        pattern, vals = want.split("||")
        assert body == f"{pattern}|{pattern}|{vals}"  # the handler, r.pattern, path values


def test_method_not_allowed_lists_allow() -> None:
    mux = http.ServeMux()
    for p in ["GET /items/{id}", "POST /items/{id}", "DELETE /items/{id}", "/other"]:
        mux.handle_func(p, tagged(p))
    code, hdr, body = get(mux, "/items/42", "PUT")
    assert code == 405 and body == "Method Not Allowed\n"
    assert hdr["allow"] == "DELETE, GET, HEAD, POST"


def test_not_found() -> None:
    m = http.ServeMux()
    m.handle_func("GET /only", tagged("x"))
    code, hdr, body = get(m, "/other")
    assert code == 404 and body == "404 page not found\n"
    assert hdr["content-type"] == "text/plain; charset=utf-8"


def test_trailing_slash_and_unclean_path_redirect(mux: http.ServeMux) -> None:
    code, hdr, _ = get(mux, "/items?q=1")
    assert code == 301 and hdr["location"] == "/items/?q=1"
    code, hdr, _ = get(mux, "/items/../files/x")
    assert code == 301 and hdr["location"] == "/files/x"


def test_path_value_on_request() -> None:
    got = {}

    def h(w: http.ResponseWriter, r: http.Request) -> None:
        got.update(a=r.path_value("a"), b=r.path_value("b"), none=r.path_value("zz"))

    m = http.ServeMux()
    m.handle_func("/x/{a}/y/{b...}", h)
    get(m, "/x/1/y/2/3")
    assert got == {"a": "1", "b": "2/3", "none": ""}


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("/a/{x}", "/a/{y}"),  # equivalent
        ("GET /a/{x}", "GET /{y}/b"),  # overlap, neither more specific
        ("/items/{id}", "/items/{id}"),
    ],
)
def test_conflicting_patterns_refused(first: str, second: str) -> None:
    m = http.ServeMux()
    m.handle_func(first, tagged("1"))
    with pytest.raises(ValueError, match="conflicts with pattern"):
        m.handle_func(second, tagged("2"))


@pytest.mark.parametrize(
    ("pattern", "msg"),
    [
        ("", "invalid pattern"),
        ("GET", "host/path missing /"),
        ("/a/{x", "must end with"),
        ("/a/x{y}", "must start with"),
        ("/{a...}/b", "not at end"),
        ("/{a}/{a}", "duplicate wildcard name"),
        ("/{1x}", "bad wildcard name"),
        ("G(T /", "invalid method"),
        ("GET /a/../b", "unclean path"),
    ],
)
def test_bad_patterns(pattern: str, msg: str) -> None:
    with pytest.raises(ValueError, match=msg.replace("(", r"\(")):
        http.ServeMux().handle_func(pattern, tagged("x"))


def test_non_conflicting_patterns_accepted() -> None:
    m = http.ServeMux()
    for p in ["/a/{x}", "/b/c", "GET /a/{x}", "HEAD /a/{x}", "host.org/a/{x}", "/a/{x}/"]:
        m.handle_func(p, tagged(p))


# WSGI


def test_wsgi_environ_and_response() -> None:
    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.update(environ)
        seen["body"] = environ["wsgi.input"].read()
        start_response("201 Created", [("Content-Type", "text/plain"), ("X-A", "1")])
        return [b"made"]

    req = (
        b"POST /p%20q/r?x=1&y=2 HTTP/1.1\r\nHost: ex.org:8080\r\nContent-Type: text/plain\r\n"
        b"Content-Length: 4\r\nX-Thing: a\r\nX-Thing: b\r\n\r\nbody"
    )
    conn = serve(http.wsgi(app), req)
    [(code, hdr, body)] = responses(bytes(conn.out))
    assert (code, hdr["x-a"], hdr["content-length"], body) == (201, "1", "4", b"made")
    assert seen["REQUEST_METHOD"] == "POST" and seen["PATH_INFO"] == "/p q/r"
    assert seen["QUERY_STRING"] == "x=1&y=2" and seen["SERVER_NAME"] == "ex.org"
    assert seen["SERVER_PORT"] == "8080" and seen["CONTENT_TYPE"] == "text/plain"
    assert seen["CONTENT_LENGTH"] == "4" and seen["HTTP_X_THING"] == "a,b"
    assert seen["REMOTE_ADDR"] == "127.0.0.1" and seen["body"] == b"body"
    assert seen["wsgi.version"] == (1, 0) and seen["SERVER_PROTOCOL"] == "HTTP/1.1"


def test_wsgi_write_callable_and_close() -> None:
    events = []

    class Result:
        def __iter__(self) -> Any:
            events.append("iter")
            yield b""
            yield b"-tail"

        def close(self) -> None:
            events.append("close")

    def app(environ: dict[str, Any], start_response: Any) -> Result:
        write = start_response("200 OK", [])
        write(b"head")
        return Result()

    conn = serve(http.wsgi(app), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    [(_, hdr, body)] = responses(bytes(conn.out))
    assert body == b"head-tail" and hdr["transfer-encoding"] == "chunked"
    assert events == ["iter", "close"]


def test_wsgi_chunked_input_streams() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        inp = environ["wsgi.input"]
        parts = []
        while True:
            line = inp.readline()
            if not line:
                break
            parts.append(line.strip())
        start_response("200 OK", [])
        return [b"+".join(parts)]

    req = (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4\r\na\nb\n\r\n2\r\nc\n\r\n0\r\n\r\n"
    )
    conn = serve(http.wsgi(app), req)
    assert responses(bytes(conn.out))[0][2] == b"a+b+c"


def test_wsgi_error_before_start_response_is_500() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise ValueError("app broke")

    conn = serve(http.wsgi(app), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert responses(bytes(conn.out))[0][0] == 500


def test_flask_app() -> None:
    flask = pytest.importorskip("flask")
    app = flask.Flask("t")

    @app.get("/hi/<name>")
    def hi(name: str) -> Any:
        return flask.jsonify(hello=name, q=flask.request.args.get("q"))

    @app.post("/echo")
    def echo() -> Any:
        return flask.request.get_data()

    reqs = (
        b"GET /hi/bob?q=z HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
        b"GET /missing HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    conn = serve(http.wsgi(app), reqs)
    (c1, h1, b1), (c2, _, b2), (c3, _, _) = responses(bytes(conn.out))
    assert c1 == 200 and h1["content-type"] == "application/json"
    import json

    assert json.loads(b1) == {"hello": "bob", "q": "z"}
    assert (c2, b2, c3) == (200, b"abc", 404)
