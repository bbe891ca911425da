"""gort.tls over gort.net, with certificates made by trustme."""

from __future__ import annotations

import ssl
import time

import pytest
import trustme

import gort
from gort.net import ErrClosed, Timeout
from gort.tls import TLSConn


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def contexts(ca: trustme.CA) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    return server_ctx, client_ctx


def tls_echo(c: TLSConn) -> None:
    with c:
        try:
            while data := c.read(4096):
                c.write(data)
        except (ssl.SSLError, OSError):
            pass  # a client that failed its handshake


def serve(ln: gort.tls.TLSListener) -> None:
    while True:
        try:
            gort.go(tls_echo, ln.accept())
        except ErrClosed:
            return


def test_tls_echo_many_clients(procs: int, ca: trustme.CA) -> None:
    server_ctx, client_ctx = contexts(ca)

    def main() -> list[str]:
        ln = gort.tls.listen("tcp", "127.0.0.1:0", server_ctx)
        gort.go(serve, ln)
        done = gort.chan(20)

        def client(i: int) -> None:
            with gort.tls.dial("tcp", f"localhost:{ln.addr.port}", client_ctx, timeout=10) as c:
                for j in range(10):
                    msg = b"%d-%d " % (i, j) * 100
                    c.write(msg)
                    got = b""
                    while len(got) < len(msg):
                        got += c.read(len(msg) - len(got))
                    assert got == msg
                done.send(c.version())

        for i in range(20):
            gort.go(client, i)
        versions = [done.recv() for _ in range(20)]
        ln.close()
        return versions

    versions = gort.run(main, procs=procs)
    assert len(versions) == 20 and all(v and v.startswith("TLS") for v in versions)


def test_tls_client_and_server_over_plain_conns(procs: int, ca: trustme.CA) -> None:
    server_ctx, client_ctx = contexts(ca)

    def main() -> bytes:
        ln = gort.net.listen("tcp", "127.0.0.1:0")
        raw = gort.net.dial("tcp", str(ln.addr))
        srv = gort.tls.server(ln.accept(), server_ctx)
        gort.go(tls_echo, srv)
        tc = gort.tls.client(raw, server_name="localhost", context=client_ctx)
        tc.write(b"lazy handshake")  # the handshake runs here
        got = tc.read(100)
        tc.close_write()  # close_notify, then EOF for the server's read loop
        assert tc.read(100) == b""  # the server echoed nothing more and closed
        tc.close()
        ln.close()
        return got

    assert gort.run(main, procs=procs) == b"lazy handshake"


def test_bad_certificate_is_raised_in_the_caller(procs: int, ca: trustme.CA) -> None:
    server_ctx, _ = contexts(ca)
    untrusting = ssl.create_default_context()  # does not know the test CA

    def main() -> str:
        ln = gort.tls.listen("tcp", "127.0.0.1:0", server_ctx)
        gort.go(serve, ln)
        with pytest.raises(ssl.SSLCertVerificationError) as ei:
            gort.tls.dial("tcp", f"localhost:{ln.addr.port}", untrusting, timeout=10)
        _, trusting = contexts(ca)
        with pytest.raises(ssl.SSLCertVerificationError):  # the name does not match
            conn = gort.net.dial("tcp", str(ln.addr))
            gort.tls.client(conn, server_name="example.org", context=trusting).handshake()
        conn.close()
        ln.close()
        return str(ei.value)

    assert "certificate verify failed" in gort.run(main, procs=procs)


def test_tls_deadline_and_close_wake_a_blocked_reader(procs: int, ca: trustme.CA) -> None:
    server_ctx, client_ctx = contexts(ca)

    def main() -> tuple[float, str]:
        ln = gort.net.listen("tcp", "127.0.0.1:0")
        raw = gort.net.dial("tcp", str(ln.addr))
        srv = gort.tls.server(ln.accept(), server_ctx)
        gort.go(srv.handshake)
        tc = gort.tls.client(raw, server_name="localhost", context=client_ctx)
        tc.handshake()
        t0 = gort.now()
        tc.set_read_deadline(t0 + 0.1)
        with pytest.raises(Timeout):
            tc.read(10)  # the server sends nothing
        waited = gort.now() - t0
        tc.set_read_deadline(None)
        res = gort.chan(1)

        def reader() -> None:
            try:
                tc.read(10)
            except ErrClosed as e:
                res.send(str(e))

        gort.go(reader)
        gort.sleep(0.02)
        tc.close()
        closed: str = res.recv()
        srv.close()
        ln.close()
        return waited, closed

    waited, closed = gort.run(main, procs=procs)
    assert waited >= 0.1
    assert closed == "use of closed network connection"


def test_handshake_parks_the_goroutine_not_the_m(ca: trustme.CA) -> None:
    # procs=1: while a client's handshake waits for a server that has not answered yet,
    # other goroutines keep running on the same P.
    server_ctx, client_ctx = contexts(ca)

    def main() -> int:
        ln = gort.net.listen("tcp", "127.0.0.1:0")
        raw = gort.net.dial("tcp", str(ln.addr))
        s = ln.accept()
        ticks = 0
        stop = gort.chan()

        def ticker() -> None:
            nonlocal ticks
            while gort.select(stop.recv, gort.after(0.005).recv)[0] == 1:
                ticks += 1

        def late_server() -> None:
            gort.sleep(0.1)
            gort.tls.server(s, server_ctx).handshake()

        gort.go(ticker)
        gort.go(late_server)
        t0 = time.monotonic()
        gort.tls.client(raw, server_name="localhost", context=client_ctx).handshake()
        assert time.monotonic() - t0 >= 0.1
        stop.close()
        for x in (raw, s, ln):
            x.close()
        return ticks

    assert gort.run(main, procs=1) >= 5
