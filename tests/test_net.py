"""gort.net: connections, listeners, deadlines, close, faults (Go's net package tests).

Every test synchronises on channels or on the conns themselves; deadlines are the only
clock, and the bounds asserted on them survive a loaded machine.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import gort
from gort.net import Conn, ErrClosed, Listener, Timeout


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def echo_server(ln: Listener) -> None:
    """Accept until ln closes; echo each conn until EOF."""

    def serve(c: Conn) -> None:
        with c:
            while True:
                d = c.read(4096)
                if not d:
                    return
                c.write(d)

    while True:
        try:
            c = ln.accept()
        except ErrClosed:
            return
        gort.go(serve, c)


def pair(ln: Listener) -> tuple[Conn, Conn]:
    """A connected (client, server) pair through ln."""
    client = gort.net.dial("tcp", str(ln.addr))
    return client, ln.accept()


def read_error(c: Conn, exc: type[BaseException]) -> gort.Chan:
    """Start a goroutine blocked reading c; the channel receives the exc it raises."""
    res = gort.chan(1)

    def reader() -> None:
        try:
            c.read(10)
        except exc as e:
            res.send(e)

    gort.go(reader)
    return res


def read_exactly(c: Conn, n: int) -> bytes:
    got = bytearray()
    while len(got) < n:
        d = c.read(n - len(got))
        if not d:
            raise EOFError(f"EOF after {len(got)} of {n} bytes")
        got += d
    return bytes(got)


def echo_clients(procs: int, nclients: int, rounds: int, size: int = 64) -> None:
    """nclients goroutines x rounds round trips through an echo server, every byte checked."""

    def main() -> list[int]:
        ln = gort.net.listen("tcp", "127.0.0.1:0")
        gort.go(echo_server, ln)
        done = gort.chan(nclients)
        seen: list[int] = []

        def client(i: int) -> None:
            with gort.net.dial("tcp", str(ln.addr)) as c:
                for j in range(rounds):
                    msg = (b"%d.%d:" % (i, j)).ljust(size, bytes([65 + (i + j) % 26]))
                    c.write(msg)
                    assert read_exactly(c, size) == msg
            done.send(i)

        for i in range(nclients):
            gort.go(client, i)
        for _ in range(nclients):
            seen.append(done.recv())
        ln.close()
        return seen

    seen = gort.run(main, procs=procs)
    assert sorted(seen) == list(range(nclients))


def test_echo_small(procs: int) -> None:
    echo_clients(procs, 20, 20)


def test_echo_1000_clients_100_round_trips(procs: int) -> None:
    before = open_fds()
    echo_clients(procs, 1000, 100)
    assert open_fds() == before


def test_large_writes_park_until_the_peer_reads(procs: int) -> None:
    # 4 MiB through one conn each way: the writer fills the socket buffer and parks.
    blob = bytes(range(256)) * (4 * 4096)

    def main() -> bytes:
        ln = gort.net.listen("tcp", "127.0.0.1:0")
        gort.go(echo_server, ln)
        with gort.net.dial("tcp", str(ln.addr)) as c:
            gort.go(c.write, blob)
            got = read_exactly(c, len(blob))
        ln.close()
        return got

    assert gort.run(main, procs=procs) == blob


def test_run_closes_what_goroutines_left_open(procs: int) -> None:
    before = open_fds()

    def main() -> None:
        ln = gort.net.listen("tcp", "127.0.0.1:0")
        _c, s = pair(ln)
        gort.go(s.read, 10)  # parked in IO wait when main returns
        gort.go(ln.accept)
        gort.gosched()

    gort.run(main, procs=procs)
    assert open_fds() == before


def test_ten_thousand_connections_opened_and_closed(procs: int) -> None:
    before = open_fds()

    def main() -> int:
        ln = gort.net.listen("tcp", "127.0.0.1:0")
        accepted = gort.chan(1000)

        def acceptor() -> None:
            n = 0
            while True:
                try:
                    c = ln.accept()
                except ErrClosed:
                    accepted.send(n)
                    return
                assert c.read(1) == b"x"
                c.close()
                n += 1

        gort.go(acceptor)
        done = gort.chan(100)

        def dialer() -> None:
            for _ in range(100):
                with gort.net.dial("tcp", str(ln.addr)) as c:
                    c.write(b"x")
                    assert c.read(1) == b""  # the server closed after reading
            done.send(None)

        for _ in range(100):
            gort.go(dialer)
        for _ in range(100):
            done.recv()
        ln.close()
        n: int = accepted.recv()
        return n

    assert gort.run(main, procs=procs) == 10_000
    assert open_fds() == before


# ---------------------------------------------------------------------------
# Deadlines


def test_read_deadline(procs: int) -> None:
    def main() -> float:
        ln = gort.net.listen("tcp", "127.0.0.1:0")
        c, s = pair(ln)
        t0 = gort.now()
        s.set_read_deadline(t0 + 0.1)
        with pytest.raises(Timeout) as ei:
            s.read(10)
        assert str(ei.value) == "i/o timeout"
        assert isinstance(ei.value, TimeoutError)
        elapsed = gort.now() - t0
        # The conn is still usable once the deadline is cleared.
        s.set_read_deadline(None)
        c.write(b"hi")
        assert s.read(10) == b"hi"
        for x in (c, s, ln):
            x.close()
        return elapsed

    assert gort.run(main, procs=procs) >= 0.1


def test_deadline_in_the_past_fails_at_once_even_with_data(procs: int) -> None:
    def main() -> None:
        ln = gort.net.listen("tcp", "127.0.0.1:0")
        c, s = pair(ln)
        c.write(b"data")
        s.set_deadline(gort.now() - 1)
        with pytest.raises(Timeout):
            s.read(10)
        with pytest.raises(Timeout):
            s.write(b"x")
        s.set_deadline(None)
        assert s.read(10) == b"data"
        for x in (c, s, ln):
            x.close()

    gort.run(main, procs=procs)


def test_write_deadline_with_a_full_send_buffer(procs: int) -> None:
    def main() -> int:
        ln = gort.net.listen("tcp", "127.0.0.1:0")
        c, s = pair(ln)
        c.set_write_deadline(gort.now() + 0.1)
        with pytest.raises(Timeout):
            c.write(b"x" * (64 << 20))  # nobody reads: the buffers fill
        for x in (c, s, ln):
            x.close()
        return 0

    gort.run(main, procs=procs)


def test_accept_deadline(procs: int) -> None:
    def main() -> None:
        ln = gort.net.listen("tcp", "127.0.0.1:0")
        ln.set_deadline(gort.now() + 0.05)
        with pytest.raises(Timeout):
            ln.accept()
        ln.set_deadline(None)
        c = gort.net.dial("tcp", str(ln.addr))
        s = ln.accept()
        for x in (c, s, ln):
            x.close()

    gort.run(main, procs=procs)


def test_dial_timeout_to_a_full_backlog(procs: int) -> None:
    # A listener that never accepts, backlog 1: once its queue is full the kernel drops
    # SYNs and a dial stays in progress until its timeout (loopback only).
    def main() -> int:
        ln = gort.net.listen("tcp", "127.0.0.1:0", backlog=1)
        conns = []
        timeouts = 0
        for _ in range(16):
            try:
                conns.append(gort.net.dial("tcp", str(ln.addr), timeout=0.2))
            except Timeout:
                timeouts += 1
                break
        for c in conns:
            c.close()
        ln.close()
        return timeouts

    assert gort.run(main, procs=procs) == 1


def test_moving_a_deadline_while_blocked(procs: int) -> None:
    # Later: the blocked read survives the old deadline. Earlier: it wakes at the new one.
    def main() -> tuple[float, float]:
        ln = gort.net.listen("tcp", "127.0.0.1:0")
        c, s = pair(ln)
        res = gort.chan(1)

        def reader() -> None:
            t0 = gort.now()
            try:
                s.read(10)
            except Timeout:
                res.send(gort.now() - t0)

        s.set_read_deadline(gort.now() + 0.1)
        gort.go(reader)
        gort.sleep(0.02)  # reader is parked by now or soon; either order is valid
        s.set_read_deadline(gort.now() + 0.4)  # later
        later = res.recv()
        s.set_read_deadline(gort.now() + 5)
        gort.go(reader)
        gort.sleep(0.02)
        s.set_read_deadline(gort.now() + 0.05)  # earlier
        earlier = res.recv()
        for x in (c, s, ln):
            x.close()
        return later, earlier

    later, earlier = gort.run(main, procs=procs)
    assert later >= 0.4
    assert earlier < 2.5


def test_deadline_moved_to_the_past_wakes_the_blocked_reader(procs: int) -> None:
    def main() -> None:
        ln = gort.net.listen("tcp", "127.0.0.1:0")
        c, s = pair(ln)
        res = read_error(s, Timeout)
        gort.sleep(0.01)
        s.set_read_deadline(gort.now() - 1)
        assert isinstance(res.recv(), Timeout)
        for x in (c, s, ln):
            x.close()

    gort.run(main, procs=procs)


# ---------------------------------------------------------------------------
# Close, reset, half-close


def test_close_wakes_a_blocked_reader_and_accept(procs: int) -> None:
    def main() -> list[str]:
        ln = gort.net.listen("tcp", "127.0.0.1:0")
        c, s = pair(ln)
        res = gort.chan(3)

        def blocked(f: Callable[[], Any]) -> None:
            try:
                f()
            except ErrClosed as e:
                res.send(str(e))

        gort.go(blocked, lambda: s.read(10))
        gort.go(blocked, lambda: s.read(10))  # two readers on one conn
        gort.go(blocked, ln.accept)
        gort.sleep(0.02)
        s.close()
        ln.close()
        out = [res.recv() for _ in range(3)]
        with pytest.raises(ErrClosed):
            s.read(1)
        with pytest.raises(ErrClosed):
            s.write(b"x")
        s.close()  # closing twice is harmless
        c.close()
        return out

    assert gort.run(main, procs=procs) == ["use of closed network connection"] * 3


def test_close_wakes_a_blocked_writer(procs: int) -> None:
    def main() -> str:
        ln = gort.net.listen("tcp", "127.0.0.1:0")
        c, s = pair(ln)
        res = gort.chan(1)

        def writer() -> None:
            try:
                c.write(b"x" * (64 << 20))
            except ErrClosed as e:
                res.send(str(e))

        gort.go(writer)
        gort.sleep(0.05)  # the buffers are full well before this
        c.close()
        out: str = res.recv()
        s.close()
        ln.close()
        return out

    assert gort.run(main, procs=procs) == "use of closed network connection"


def test_reset_raises_connection_reset_error(procs: int) -> None:
    def main() -> None:
        ln = gort.net.listen("tcp", "127.0.0.1:0")
        c, s = pair(ln)
        res = read_error(s, ConnectionResetError)
        gort.sleep(0.01)
        # SO_LINGER 0: close sends RST instead of FIN.
        c.fd.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
        c.close()
        assert isinstance(res.recv(), ConnectionResetError)
        s.close()
        ln.close()

    gort.run(main, procs=procs)


def test_half_close(procs: int) -> None:
    def main() -> bytes:
        ln = gort.net.listen("tcp", "127.0.0.1:0")
        c, s = pair(ln)
        c.write(b"request")
        c.close_write()
        req = b""
        while d := s.read(100):
            req += d  # reads to EOF
        s.write(req.upper())
        s.close()
        reply = read_exactly(c, 7)
        assert c.read(1) == b""
        c.close()
        ln.close()
        return req + reply

    assert gort.run(main, procs=procs) == b"requestREQUEST"


# ---------------------------------------------------------------------------
# UDP, unix sockets, lookups, addresses


def test_udp(procs: int) -> None:
    def main() -> list[bytes]:
        srv = gort.net.listen_packet("udp", "127.0.0.1:0")

        def echo() -> None:
            while True:
                try:
                    data, addr = srv.read_from(2048)
                except ErrClosed:
                    return
                srv.write_to(data.upper(), addr)

        gort.go(echo)
        cli = gort.net.listen_packet("udp", "127.0.0.1:0")
        out = []
        for i in range(20):
            cli.write_to(b"ping %d" % i, str(srv.local_addr))
            data, addr = cli.read_from(2048)
            assert addr == srv.local_addr
            out.append(data)
        conn = gort.net.dial("udp", str(srv.local_addr))
        conn.write(b"dialled")
        out.append(conn.read(100))
        for x in (conn, cli, srv):
            x.close()
        return out

    out = gort.run(main, procs=procs)
    assert out == [b"PING %d" % i for i in range(20)] + [b"DIALLED"]


def test_unix_sockets(procs: int, tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")

    def main() -> bytes:
        ln = gort.net.listen("unix", path)
        assert str(ln.addr) == path
        gort.go(echo_server, ln)
        with gort.net.dial("unix", path) as c:
            c.write(b"over unix")
            got = read_exactly(c, 9)
        ln.close()
        return got

    assert gort.run(main, procs=procs) == b"over unix"
    assert not os.path.exists(path)  # the listener removed its socket file


def test_addresses_and_lookup(procs: int) -> None:
    def main() -> None:
        assert "127.0.0.1" in gort.net.lookup_host("localhost") or "::1" in (
            gort.net.lookup_host("localhost")
        )
        assert gort.net.lookup_host("10.1.2.3") == ["10.1.2.3"]
        ln = gort.net.listen("tcp", "127.0.0.1:0")
        assert ln.addr.host == "127.0.0.1" and ln.addr.port > 0
        c = gort.net.dial("tcp", f"localhost:{ln.addr.port}")
        s = ln.accept()
        assert c.remote_addr == ln.addr
        assert s.remote_addr == c.local_addr
        assert c.fd.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert s.fd.sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
        for bad in ("nonsense", "1.2.3.4:99999", "[::1:80", "a:b:c"):
            with pytest.raises(ValueError, match=rf"address {bad.replace('[', '.')}"):
                gort.net.dial("tcp", bad)
        with pytest.raises(ValueError, match="unknown network"):
            gort.net.listen("tcpx", "127.0.0.1:0")
        with pytest.raises(ConnectionRefusedError):
            ln6 = gort.net.listen("tcp", "127.0.0.1:0")
            port = ln6.addr.port
            ln6.close()
            gort.net.dial("tcp", f"127.0.0.1:{port}")
        for x in (c, s, ln):
            x.close()

    gort.run(main, procs=procs)


def test_v6_loopback(procs: int) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")

    def main() -> str:
        try:
            ln = gort.net.listen("tcp6", "[::1]:0")
        except OSError:
            return "skip"
        gort.go(echo_server, ln)
        with gort.net.dial("tcp", str(ln.addr)) as c:
            c.write(b"six")
            got = read_exactly(c, 3)
        ln.close()
        assert str(ln.addr).startswith("[::1]:")
        return got.decode()

    assert gort.run(main, procs=procs) in ("six", "skip")


def test_io_outside_a_goroutine_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match=r"gort\.net\.listen called outside a goroutine"):
        gort.net.listen("tcp", "127.0.0.1:0")
    with pytest.raises(RuntimeError, match=r"gort\.net\.dial called outside a goroutine"):
        gort.net.dial("tcp", "127.0.0.1:1")


# ---------------------------------------------------------------------------
# The scheduler and the poller


def test_a_goroutine_in_io_wait_is_not_a_deadlock(procs: int) -> None:
    # Every goroutine is blocked and no timer is pending, but one waits for I/O that a
    # thread outside the runtime provides: checkdead must not fire.
    def main() -> tuple[bytes, str]:
        ln = gort.net.listen("tcp", "127.0.0.1:0")
        res = gort.chan()
        plain = socket.create_connection(("127.0.0.1", ln.addr.port))
        s = ln.accept()

        def reader() -> None:
            res.send(s.read(10))

        gort.go(reader)
        gort.gosched()
        from gort.runtime.traceback import dump_all

        dump = dump_all()
        threading.Timer(0.1, plain.sendall, (b"late",)).start()
        got: bytes = res.recv()
        plain.close()
        s.close()
        ln.close()
        return got, dump

    got, dump = gort.run(main, procs=procs)
    assert got == b"late"
    assert "[IO wait]:" in dump


def test_the_selectors_fallback(procs: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GORT_NETPOLL", "selectors")

    def main() -> str:
        from gort.runtime.runtime2 import sched

        ln = gort.net.listen("tcp", "127.0.0.1:0")
        name = type(sched.poller.backend).__name__
        ln.close()
        return name

    assert gort.run(main, procs=procs) == "SelectorsBackend"
    echo_clients(procs, 50, 20)


def test_poller_readies_goroutines_while_main_computes(procs: int) -> None:
    # main never parks: sysmon's poll (and preemption) must still deliver the echo.
    def main() -> bytes:
        ln = gort.net.listen("tcp", "127.0.0.1:0")
        gort.go(echo_server, ln)
        got = gort.chan(1)

        def client() -> None:
            with gort.net.dial("tcp", str(ln.addr)) as c:
                c.write(b"ping")
                got.send(read_exactly(c, 4))

        gort.go(client)
        deadline = time.monotonic() + 10
        while len(got) == 0 and time.monotonic() < deadline:
            n = 0
            while n < 100_000:  # busy, without calls: async preemption's safe points
                n += 1
        ln.close()
        out: bytes = got.recv()
        return out

    assert gort.run(main, procs=procs) == b"ping"


def test_idle_cpu_with_1000_idle_connections(procs: int) -> None:
    def main() -> tuple[float, float]:
        ln = gort.net.listen("tcp", "127.0.0.1:0")
        gort.go(echo_server, ln)
        conns = [gort.net.dial("tcp", str(ln.addr)) for _ in range(1000)]
        for c in conns[:10]:
            c.write(b"warm")
            assert read_exactly(c, 4) == b"warm"
        gort.sleep(0.1)  # the server goroutines are all parked in IO wait
        c0, w0 = time.process_time(), time.monotonic()
        gort.sleep(1.0)
        cpu, wall = time.process_time() - c0, time.monotonic() - w0
        for c in conns:
            c.close()
        ln.close()
        return cpu, wall

    cpu, wall = gort.run(main, procs=procs)
    assert cpu < 0.01 * wall, (cpu, wall)


EMFILE_PROG = """
import errno, resource, socket
import gort

def main():
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    ln = gort.net.listen("tcp", "127.0.0.1:0")
    held, errs = [], []
    for _ in range(40):  # plain client sockets; accepting them all needs more than 64
        held.append(socket.create_connection(("127.0.0.1", ln.addr.port)))
    accepted = []
    while True:
        try:
            accepted.append(ln.accept())
        except OSError as e:
            errs.append(e.errno)
            break
    for c in accepted[:10]:
        c.close()
    again = ln.accept()  # the listener is still usable once descriptors are free
    again.close()
    print("EMFILE" if errs == [errno.EMFILE] else errs, len(accepted) > 0)
"""


def test_accept_emfile_leaves_the_listener_usable(tmp_path: Path) -> None:
    from gortproc import run_script

    r = run_script(tmp_path, EMFILE_PROG)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["EMFILE", "True"]


def test_dial_with_a_context(procs: int) -> None:
    # A cancelled ctx aborts a dial blocked on a full backlog; a ctx deadline bounds it.
    def main() -> tuple[str, float, str]:
        ln = gort.net.listen("tcp", "127.0.0.1:0", backlog=1)
        held = []
        while True:  # fill the backlog: a dial after that stays in progress
            try:
                held.append(gort.net.dial("tcp", str(ln.addr), timeout=0.2))
            except Timeout:
                break
        ctx, cancel = gort.with_cancel(gort.background())
        gort.after_func(0.05, cancel)
        t0 = gort.now()
        with pytest.raises(gort.Canceled) as ei:
            gort.net.dial("tcp", str(ln.addr), ctx=ctx)
        cancelled_after = gort.now() - t0
        with pytest.raises(gort.Canceled):
            gort.net.dial("tcp", str(ln.addr), ctx=ctx)  # already done: fails at once
        tctx, tcancel = gort.with_timeout(gort.background(), 0.05)
        with pytest.raises(Timeout) as te:
            gort.net.dial("tcp", str(ln.addr), ctx=tctx)
        tcancel()
        ok_ctx, ok_cancel = gort.with_cancel(gort.background())
        ln2 = gort.net.listen("tcp", "127.0.0.1:0")
        gort.net.dial("tcp", str(ln2.addr), ctx=ok_ctx).close()
        ok_cancel()
        for c in held:
            c.close()
        ln.close()
        ln2.close()
        return str(ei.value), cancelled_after, str(te.value)

    msg, after, tmsg = gort.run(main, procs=procs)
    assert msg == "operation was canceled"
    assert after < 5
    assert tmsg == "i/o timeout"


def test_data_and_fin_in_one_edge_are_both_read(procs: int) -> None:
    # The peer writes and closes at once: one readiness event may carry both, and a
    # short read (stopped at the FIN) must not leave the reader waiting for another.
    def main() -> list[bytes]:
        ln = gort.net.listen("tcp", "127.0.0.1:0")
        out = []
        for i in range(50):
            c, s = pair(ln)
            if i % 2:
                gort.sleep(0.001)  # the reader is parked first half the time

            def reply(s: Conn = s, i: int = i) -> None:
                s.write(b"%d" % i)
                s.close()

            gort.go(reply)
            got = b""
            while d := c.read(65536):
                got += d
            out.append(got)
            c.close()
        ln.close()
        return out

    assert gort.run(main, procs=procs) == [b"%d" % i for i in range(50)]
