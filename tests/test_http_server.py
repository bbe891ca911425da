"""gort.http over real sockets: conformance with http.client and urllib3 against
``python -m gort.http`` in a subprocess, and in-process tests of what needs
the server's insides (shutdown, request contexts, many clients, accept errors).
Every server listens on 127.0.0.1 only."""

from __future__ import annotations

import errno
import http.client
import itertools
import json
import logging
import select
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

import gort
import gort.http as ghttp
from gort import net
from httpproc import ServerProc


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProc]:
    s = ServerProc(
        "--bind",
        "127.0.0.1:0",
        "--read-header-timeout",
        "1.0",
        "--idle-timeout",
        "20",
        "http_app:mux",
    )
    yield s
    code = s.stop()
    assert code == 0, f"exit status {code}; stderr:\n{''.join(s.stderr)}"


def _conn(s: ServerProc) -> http.client.HTTPConnection:
    return http.client.HTTPConnection(s.host, s.port, timeout=10)


def _raw(s: ServerProc) -> socket.socket:
    sock = socket.create_connection((s.host, s.port), timeout=10)
    return sock


def _read_until_closed(sock: socket.socket, limit: float = 10.0) -> bytes:
    out = b""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        data = sock.recv(65536)
        if not data:
            return out
        out += data
    raise AssertionError(f"connection still open; got {out!r}")


# conformance with http.client and urllib3


def test_http_client_keep_alive(server: ServerProc) -> None:
    c = _conn(server)
    socks = set()
    for i in range(5):
        c.request("GET", "/hello", headers={"X-I": str(i)})
        r = c.getresponse()
        assert (r.status, r.read(), r.getheader("Content-Length")) == (200, b"hello", "5")
        socks.add(id(c.sock))
    assert len(socks) == 1  # one connection for all five
    c.close()


def test_urllib3_pool_reuses_one_connection(server: ServerProc) -> None:
    urllib3 = pytest.importorskip("urllib3")
    pool = urllib3.HTTPConnectionPool(server.host, server.port, maxsize=1, timeout=10)
    for i in range(10):
        r = pool.request("POST", "/echo", body=b"x" * i)
        assert (r.status, r.data, r.headers["X-Body-Len"]) == (200, b"x" * i, str(i))
    assert pool.num_connections == 1
    r = pool.request("GET", "/stream?n=4")
    assert r.data == b"part 0\npart 1\npart 2\npart 3\n"
    assert r.headers["Transfer-Encoding"] == "chunked"
    pool.close()


def test_pipelining_over_raw_socket(server: ServerProc) -> None:
    sock = _raw(server)
    reqs = [
        b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc",
        b"GET /stream?n=2 HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    ]
    sock.sendall(b"".join(reqs))
    data = _read_until_closed(sock)
    sock.close()
    from httpfake import responses

    bodies = [b for _, _, b in responses(data)]
    assert bodies == [b"hello", b"abc", b"part 0\npart 1\n", b"hello"]


def test_chunked_request_body(server: ServerProc) -> None:
    c = _conn(server)

    def gen() -> Iterator[bytes]:
        for i in range(50):
            yield b"%03d," % i

    c.request("PUT", "/echo", body=gen(), encode_chunked=True)
    r = c.getresponse()
    want = b"".join(b"%03d," % i for i in range(50))
    assert (r.read(), r.getheader("X-Content-Length")) == (want, "-1")
    c.close()


def test_large_chunked_response(server: ServerProc) -> None:
    c = _conn(server)
    c.request("GET", "/big")
    r = c.getresponse()
    assert r.getheader("Transfer-Encoding") == "chunked"
    assert r.read() == bytes(range(256)) * 400
    c.close()


def test_expect_100_continue(server: ServerProc) -> None:
    sock = _raw(server)
    sock.sendall(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
    )
    got = b""
    while b"\r\n\r\n" not in got:
        got += sock.recv(100)
    assert got == b"HTTP/1.1 100 Continue\r\n\r\n"  # before the client sent any body
    sock.sendall(b"hello")
    resp = http.client.HTTPResponse(sock)
    resp.begin()
    assert (resp.status, resp.read()) == (200, b"hello")
    sock.close()


def test_head(server: ServerProc) -> None:
    c = _conn(server)
    c.request("HEAD", "/hello")
    r = c.getresponse()
    assert (r.status, r.getheader("Content-Length"), r.read()) == (200, "5", b"")
    c.request("GET", "/hello")  # the connection is still in sync
    assert c.getresponse().read() == b"hello"
    c.close()


# bad input over the wire


@pytest.mark.parametrize(
    "req",
    [
        b"NOT A REQUEST\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /hello HTTP/1.1\r\nHost: t\r\n\r\n",
    ],
    ids=["garbage", "cl-differ", "cl-and-te"],
)
def test_bad_request_400_then_closed(server: ServerProc, req: bytes) -> None:
    sock = _raw(server)
    sock.sendall(req)
    data = _read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 400 Bad Request") and data.count(b"HTTP/1.1") == 1
    sock.close()


def test_oversized_header_431(server: ServerProc) -> None:
    sock = _raw(server)
    sock.sendall(b"GET /hello HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * (2 << 20) + b"\r\n\r\n")
    data = _read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 431 Request Header Fields Too Large")
    sock.close()


def test_slowloris_cut_by_read_header_timeout(server: ServerProc) -> None:
    sock = _raw(server)
    start = time.monotonic()
    sock.sendall(b"GET /hello HTTP/1.1\r\n")
    closed = False
    got = b""
    while time.monotonic() - start < 10:
        r, _, _ = select.select([sock], [], [], 0.1)
        if r:
            try:
                data = sock.recv(100)
            except ConnectionResetError:  # closed with our header bytes unread: a reset
                data = b""
            got += data
            if not data:
                closed = True
                break
        else:
            try:
                sock.sendall(b"X: y\r\n")  # a header line every 100 ms, never the end
            except OSError:
                closed = True
                break
    elapsed = time.monotonic() - start
    sock.close()
    assert closed and got == b""  # cut off silently, as Go does
    assert 0.9 <= elapsed < 8, elapsed  # read_header_timeout is 1 s


def test_handler_exception_is_500_and_server_lives(server: ServerProc) -> None:
    c = _conn(server)
    c.request("GET", "/boom")
    r = c.getresponse()
    assert (r.status, r.getheader("Connection"), r.read()) == (
        500,
        "close",
        b"Internal Server Error\n",
    )
    c.close()
    c = _conn(server)
    c.request("GET", "/hello")
    assert c.getresponse().read() == b"hello"
    c.close()
    deadline = time.monotonic() + 10
    while not any("RuntimeError: boom" in line for line in server.stderr):
        assert time.monotonic() < deadline, "the traceback was not logged"
        time.sleep(0.01)


def test_flask_through_wsgi() -> None:
    pytest.importorskip("flask")
    s = ServerProc("--bind", "127.0.0.1:0", "http_app:flask_app")
    try:
        c = _conn(s)
        c.request("GET", "/greet/gopher")
        r = c.getresponse()
        assert r.status == 200 and r.getheader("Content-Type") == "application/json"
        assert json.loads(r.read())["greeting"] == "hello gopher"
        c.request("POST", "/upper", body=b"shout")
        assert c.getresponse().read() == b"SHOUT"
        c.request("GET", "/nowhere")
        r = c.getresponse()
        r.read()
        assert r.status == 404
        c.close()
    finally:
        assert s.stop() == 0


# in-process: shutdown, contexts, many clients, accept errors


def _raw_get(addr: str, path: str = "/") -> bytes:
    c = net.dial("tcp", addr)
    try:
        c.write(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        out = b""
        while True:
            data = c.read(65536)
            if not data:
                return out
            out += data
    finally:
        c.close()


def test_graceful_shutdown_waits_for_requests_in_flight(procs: int) -> None:
    def main() -> None:
        entered, release = gort.chan(10), gort.chan()

        def handler(w: ghttp.ResponseWriter, r: ghttp.Request) -> None:
            if r.url.path != "/idle":
                entered.send(r.url.path)
                release.recv()
            w.write(b"finished " + r.url.path.encode())

        ln = net.listen("tcp", "127.0.0.1:0")
        addr = str(ln.addr)
        srv = ghttp.Server(handler=handler)
        served = gort.chan(1)
        gort.go(lambda: served.send(srv.serve(ln)))
        results = gort.chan(10)
        for p in ("/a", "/b"):
            gort.go(lambda p=p: results.send(_raw_get(addr, p)))
        # a kept-alive connection that has had its answer: idle, closed by shutdown at once
        idle = net.dial("tcp", addr)
        idle.write(b"GET /idle HTTP/1.1\r\nHost: t\r\n\r\n")
        got = b""
        while not got.endswith(b"finished /idle"):
            got += idle.read(4096)
        assert {entered.recv(), entered.recv()} == {"/a", "/b"}
        shut = gort.chan(1)
        gort.go(lambda: shut.send(srv.shutdown(gort.background())))
        assert served.recv() is ghttp.ErrServerClosed  # stopped accepting
        assert idle.read(4096) == b""  # the idle connection was closed
        with pytest.raises(OSError):
            net.dial("tcp", addr, timeout=2.0).close()
        i, _ = gort.select(shut.recv, gort.default)
        assert i == 1, "shutdown returned with requests in flight"
        release.send(None)
        release.send(None)
        assert shut.recv() is None
        bodies = {results.recv().rsplit(b"\r\n\r\n", 1)[1] for _ in range(2)}
        assert bodies == {b"finished /a", b"finished /b"}
        idle.close()

    gort.run(main, procs=procs)


def test_shutdown_deadline_cancels_request_contexts(procs: int) -> None:
    def main() -> None:
        entered = gort.chan(1)
        errs = gort.chan(1)

        def handler(w: ghttp.ResponseWriter, r: ghttp.Request) -> None:
            ctx = r.context()
            entered.send(None)
            ctx.done().recv()
            errs.send(ctx.err())

        ln = net.listen("tcp", "127.0.0.1:0")
        srv = ghttp.Server(handler=handler)
        gort.go(srv.serve, ln)
        c = net.dial("tcp", str(ln.addr))
        c.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        entered.recv()
        ctx, cancel = gort.with_timeout(gort.background(), 0.05)
        err = srv.shutdown(ctx)
        cancel()
        assert err is gort.DeadlineExceeded
        assert errs.recv() is gort.Canceled
        c.close()

    gort.run(main, procs=procs)


def test_client_disconnect_cancels_request_context(procs: int) -> None:
    def main() -> None:
        entered = gort.chan(1)
        errs = gort.chan(1)

        def handler(w: ghttp.ResponseWriter, r: ghttp.Request) -> None:
            ctx = r.context()
            r.body.read()
            entered.send(None)
            i, _ = gort.select(ctx.done().recv, gort.after(10).recv)
            errs.send((i, ctx.err()))

        ln = net.listen("tcp", "127.0.0.1:0")
        srv = ghttp.Server(handler=handler)
        gort.go(srv.serve, ln)
        c = net.dial("tcp", str(ln.addr))
        c.write(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi")
        entered.recv()
        c.close()  # the client goes away mid-request
        i, err = errs.recv()
        assert i == 0 and err is gort.Canceled
        srv.close()

    gort.run(main, procs=procs)


def test_request_context_of_finished_request_is_cancelled_and_conn_reused(procs: int) -> None:
    def main() -> None:
        ctxs: list[Any] = []
        previous: list[Any] = []

        def handler(w: ghttp.ResponseWriter, r: ghttp.Request) -> None:
            if ctxs:  # the previous request on this connection has ended
                previous.append(ctxs[-1].err())
            ctx = r.context()
            previous.append(ctx.err())  # live while its handler runs
            ctxs.append(ctx)
            w.write(b"ok")

        ln = net.listen("tcp", "127.0.0.1:0")
        srv = ghttp.Server(handler=handler)
        gort.go(srv.serve, ln)
        c = net.dial("tcp", str(ln.addr))
        for _ in range(3):
            c.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            got = b""
            while not got.endswith(b"ok"):
                got += c.read(4096)
        assert previous == [None, gort.Canceled, None, gort.Canceled, None]
        # the last one ends after the client has its answer: wait for it, bounded
        gort.select(ctxs[-1].done().recv, gort.after(5).recv)
        assert ctxs[-1].err() is gort.Canceled
        c.close()
        srv.close()

    gort.run(main, procs=procs)


def test_thousand_concurrent_keep_alive_clients() -> None:
    n, rounds = 1000, 3

    def main() -> int:
        def handler(w: ghttp.ResponseWriter, r: ghttp.Request) -> None:
            w.write(r.url.path.encode())

        ln = net.listen("tcp", "127.0.0.1:0", backlog=2048)
        addr = str(ln.addr)
        srv = ghttp.Server(handler=handler)
        gort.go(srv.serve, ln)
        done = gort.chan(n)

        def client(i: int) -> None:
            c = net.dial("tcp", addr)
            ok = 0
            buf = b""
            for k in range(rounds):
                path = f"/{i}/{k}".encode()
                c.write(b"GET " + path + b" HTTP/1.1\r\nHost: t\r\n\r\n")
                want = b"\r\n\r\n" + path
                while not buf.endswith(want):
                    data = c.read(4096)
                    assert data, "server closed a keep-alive connection"
                    buf += data
                ok += 1
                buf = b""
            c.close()
            done.send(ok)

        for i in range(n):
            gort.go(client, i)
        total = sum(done.recv() for _ in range(n))
        srv.close()
        return total

    start = time.monotonic()
    assert gort.run(main, procs=2) == n * rounds
    assert time.monotonic() - start < 60


def test_accept_backs_off_on_emfile(caplog: pytest.LogCaptureFixture) -> None:
    class FailingListener:
        def __init__(self, srv: ghttp.Server) -> None:
            self.srv = srv
            self.calls: list[float] = []

        def accept(self) -> Any:
            self.calls.append(time.monotonic())
            if len(self.calls) <= 4:
                raise OSError(errno.EMFILE, "Too many open files")
            self.srv._shutting = True
            raise OSError(errno.EBADF, "closed")

        def close(self) -> None:
            pass

    def main() -> Any:
        srv = ghttp.Server(handler=lambda w, r: None)
        ln = FailingListener(srv)
        err = srv.serve(ln)
        return err, ln.calls

    with caplog.at_level(logging.ERROR, logger="gort.http"):
        err, calls = gort.run(main)
    assert err is ghttp.ErrServerClosed
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert [m.getMessage().rsplit(" ", 1)[1] for m in caplog.records] == [
        "5ms",
        "10ms",
        "20ms",
        "40ms",
    ]
    assert all(g >= d * 0.9 for g, d in zip(gaps, (0.005, 0.01, 0.02, 0.04), strict=False))


def test_idle_timeout_closes_kept_alive_connection(procs: int) -> None:
    def main() -> float:
        ln = net.listen("tcp", "127.0.0.1:0")
        srv = ghttp.Server(handler=lambda w, r: w.write(b"ok"), idle_timeout=0.2)
        gort.go(srv.serve, ln)
        c = net.dial("tcp", str(ln.addr))
        c.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        got = b""
        while not got.endswith(b"ok"):
            got += c.read(4096)
        start = time.monotonic()
        c.set_read_deadline(gort.now() + 10)
        assert c.read(4096) == b""  # the server closed the idle connection
        waited = time.monotonic() - start
        c.close()
        srv.close()
        return waited

    waited = gort.run(main, procs=procs)
    assert 0.15 <= waited < 8


def test_read_timeout_cuts_a_slow_body(procs: int) -> None:
    def main() -> None:
        errs = gort.chan(1)

        def handler(w: ghttp.ResponseWriter, r: ghttp.Request) -> None:
            try:
                r.body.read()
            except OSError as e:
                errs.send(type(e).__name__)
                raise

        ln = net.listen("tcp", "127.0.0.1:0")
        srv = ghttp.Server(handler=handler, read_timeout=0.3)
        gort.go(srv.serve, ln)
        c = net.dial("tcp", str(ln.addr))
        c.write(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc")
        assert errs.recv() == "Timeout"  # gort.net's i/o timeout, within the handler
        c.set_read_deadline(gort.now() + 10)
        assert c.read(4096) == b""  # closed, no answer after a read error
        c.close()
        srv.close()

    gort.run(main, procs=procs)
