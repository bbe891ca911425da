"""gort.monkey's I/O waits: select.select, poll and epoll objects, selectors,
ssl, os.read/os.write and subprocess parking goroutines on the run's poller.

Patching is process-global, so every scenario runs in its own interpreter
(tests/gortproc.py). Each script checks its values, its concurrency (total
time bounds far from the sequential time), that nothing stays registered
with the poller, and that gort.run leaves no descriptor open.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gortproc import run_script

pytestmark = pytest.mark.timeout(120)

# Helpers every script starts with: the open descriptors, and the poller's
# state (no waiter, no registration but the owners').
PRELUDE = """
import os, select, selectors, socket, sys, threading, time
import gort, gort.monkey
from gort.runtime.runtime2 import sched

def open_fds():
    return set(os.listdir("/proc/self/fd"))

def poller_idle(owned=0):
    p = sched.poller
    assert p is None or (p.nwait == 0 and len(p.fds) == owned), (p.nwait, dict(p.fds))

PROCS = int(os.environ["TEST_PROCS"])

def main():
    pass  # each script runs gort.run(prog, procs=PROCS) itself, to check what the run left
"""


def ok(p: subprocess.CompletedProcess[str]) -> str:
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def run(tmp_path: Path, body: str, procs: str = "1", env: dict[str, str] | None = None) -> str:
    env = {**(env or {}), "TEST_PROCS": procs}
    return ok(run_script(tmp_path, PRELUDE + body, cli=("--patch",), env=env))


@pytest.mark.parametrize("procs", ["1", "2"])
def test_select_poll_epoll_selectors_wait_concurrently(tmp_path: Path, procs: str) -> None:
    """40 goroutines each in select.select, poll, epoll and a DefaultSelector
    (160 waits of 0.3 s on pipes nobody writes) end together, empty; then
    each kind reports the one pipe of several that a writer filled."""
    body = """
N = 40
KINDS = ("select", "poll", "epoll", "selectors")

def wait(kind, fds, timeout):
    if kind == "select":
        return select.select(fds, [], [], timeout)[0]
    if kind == "poll":
        po = select.poll()
        for fd in fds:
            po.register(fd, select.POLLIN)
        return [fd for fd, ev in po.poll(None if timeout is None else timeout * 1000)]
    if kind == "epoll":
        with select.epoll() as ep:
            for fd in fds:
                ep.register(fd, select.EPOLLIN)
            return [fd for fd, ev in ep.poll(timeout)]
    with selectors.DefaultSelector() as sel:
        for fd in fds:
            sel.register(fd, selectors.EVENT_READ, fd)
        return [k.data for k, ev in sel.select(timeout)]

def prog():
    pipes = [os.pipe() for _ in range(4 * N)]
    done = gort.Chan(4 * N)
    def idle(kind, r):
        done.send(wait(kind, [r], 0.3))
    t0 = time.monotonic()
    for i, (r, w) in enumerate(pipes):
        gort.go(idle, KINDS[i % 4], r)
    got = [done.recv() for _ in range(4 * N)]
    elapsed = time.monotonic() - t0
    assert got == [[]] * (4 * N), got
    assert elapsed < 4 * N * 0.3 / 8, elapsed
    poller_idle()

    # The pipe written to is the one reported, whoever wakes first.
    for kind in KINDS:
        rs = [pipes[i][0] for i in range(3)]
        def one():
            done.send(wait(kind, rs, None))
        gort.go(one)
        gort.go(os.write, pipes[1][1], b"x")
        assert done.recv() == [pipes[1][0]], kind
        assert os.read(pipes[1][0], 10) == b"x"
    poller_idle()
    for r, w in pipes:
        os.close(r); os.close(w)
    print("OK")

before = open_fds()
gort.run(prog, procs=PROCS)
assert open_fds() == before, (before, open_fds())
"""
    assert run(tmp_path, body, procs).strip() == "OK"


@pytest.mark.parametrize("backend", ["epoll", "selectors"])
def test_select_on_descriptors_owned_by_sockets(tmp_path: Path, backend: str) -> None:
    """select.select and a selector on patched sockets (registered with the
    poller by their owner) while another goroutine is parked in recv on the
    same socket: both wake on one send, the reader gets the bytes, and the
    owner's registration stays (one per socket) while no waiter is left."""
    body = """
def prog():
    a, b = socket.socketpair()           # made in a goroutine: registered now
    poller_idle(owned=2)
    out = gort.Chan(3)
    gort.go(lambda: out.send(("recv", b.recv(1))))   # leaves a byte for the selects
    gort.go(lambda: out.send(("select", select.select([b], [], [], 10)[0] == [b])))
    def sel():
        with selectors.DefaultSelector() as s:
            s.register(b, selectors.EVENT_READ)
            out.send(("selector", [k.fileobj for k, _ in s.select(10)] == [b]))
    gort.go(sel)
    gort.sleep(0.05)   # not needed for the values: the waits see the data either way
    a.send(b"hi")
    got = sorted(out.recv() for _ in range(3))
    assert got == [("recv", b"h"), ("select", True), ("selector", True)], got
    assert b.recv(10) == b"i"
    # Writable at once (level check), and the owner's recv still parks and wakes.
    assert select.select([], [a], [], 10) == ([], [a], [])
    gort.go(lambda: out.send(b.recv(10)))
    a.send(b"again")
    assert out.recv() == b"again"
    poller_idle(owned=2)
    a.close(); b.close()
    poller_idle()
    print("OK")

before = open_fds()
gort.run(prog, procs=PROCS)
assert open_fds() == before
"""
    env = {"GORT_NETPOLL": backend} if backend == "selectors" else None
    assert run(tmp_path, body, "2", env).strip() == "OK"


def test_waits_left_at_run_end_leave_nothing(tmp_path: Path) -> None:
    """Goroutines parked forever in each kind of wait when main returns are
    unwound by the run's teardown: no descriptor stays open, and the next
    run starts clean and waits again."""
    body = """
def forever(kind, r):
    if kind == "select":
        select.select([r], [], [])
    elif kind == "poll":
        po = select.poll(); po.register(r); po.poll()
    elif kind == "epoll":
        ep = select.epoll(); ep.register(r, select.EPOLLIN); ep.poll()
    else:
        sel = selectors.DefaultSelector(); sel.register(r, selectors.EVENT_READ); sel.select()

r, w = os.pipe()
def prog():
    for kind in ("select", "poll", "epoll", "selectors"):
        gort.go(forever, kind, r)
    gort.sleep(0.1)
    assert sched.poller.nwait == 4, sched.poller.nwait

before = open_fds()
for _ in range(2):
    gort.run(prog, procs=PROCS)
    import gc; gc.collect()        # the unwound epoll objects are garbage now
    assert open_fds() == before, (before, open_fds())
os.close(r); os.close(w)
print("OK")
"""
    assert run(tmp_path, body).strip() == "OK"


def test_select_family_errors_and_outside_goroutines(tmp_path: Path) -> None:
    """Errors in the standard library's words inside goroutines; before
    gort.run and on a plain thread the originals run (and block)."""
    body = """
def expect(exc, text, fn, *args):
    try:
        fn(*args)
    except exc as e:
        assert text in str(e), (str(e), text)
    else:
        raise AssertionError(f"no {exc.__name__} from {fn}")

def errors():
    r, w = os.pipe()
    expect(TypeError, "timeout must be a float or None", select.select, [r], [], [], "1")
    expect(ValueError, "timeout must be non-negative", select.select, [r], [], [], -1)
    po = select.poll()
    po.register(r)
    expect(TypeError, "timeout must be an integer or None", po.poll, "1")
    expect(KeyError, "", po.unregister, w)
    ep = select.epoll()
    ep.close()
    expect(ValueError, "I/O operation on closed epoll object", ep.poll, 1)
    os.close(r); os.close(w)
    expect(OSError, "Bad file descriptor", select.select, [r], [], [], 1)
    expect(ValueError, "cannot be a negative integer", select.select, [-1], [], [], 1)

def plain(tag):
    # The originals: the C objects' own waits, a real 0.1 s block.
    r, w = os.pipe()
    t0 = time.monotonic()
    assert select.select([r], [], [], 0.1) == ([], [], [])
    po = select.poll(); po.register(r)
    assert po.poll(100) == []
    assert time.monotonic() - t0 >= 0.19
    os.write(w, b"x")
    with selectors.DefaultSelector() as s:
        s.register(r, selectors.EVENT_READ)
        assert len(s.select(1)) == 1
    os.close(r); os.close(w)
    return tag

assert gort.monkey.is_patched("select") and gort.monkey.is_patched("selectors")
assert gort.monkey.patch_select() is False and gort.monkey.patch_selectors() is False
assert plain("before") == "before"
def prog():
    errors()
    assert gort.syscall(plain, "thread") == "thread"   # a helper M: a plain OS thread
    print("OK")
gort.run(prog, procs=PROCS)
assert plain("after") == "after"
"""
    assert run(tmp_path, body).strip() == "OK"


@pytest.mark.parametrize("procs", ["1", "2"])
def test_os_read_write_on_pipes_park(tmp_path: Path, procs: str) -> None:
    """50 readers parked in os.read on their pipes while writers sleep 0.2 s
    first: every value arrives, together; a 1 MiB os.write into a pipe whose
    reader is another goroutine completes (a blocking write would hold the
    only M forever at GOMAXPROCS 1); regular files, non-blocking pipes and
    bad descriptors behave as the originals."""
    body = """
def prog():
    pipes = [os.pipe() for _ in range(50)]
    out = gort.Chan(50)
    for i, (r, w) in enumerate(pipes):
        gort.go(lambda r=r, i=i: out.send((i, os.read(r, 100))))
        def writer(w=w, i=i):
            time.sleep(0.2)
            assert os.write(w, b"v%d" % i) == len(b"v%d" % i)
        gort.go(writer)
    t0 = time.monotonic()
    got = sorted(out.recv() for _ in range(50))
    assert got == [(i, b"v%d" % i) for i in range(50)], got
    assert time.monotonic() - t0 < 50 * 0.2 / 4
    for r, w in pipes:
        os.close(r); os.close(w)

    big = bytes(range(256)) * 4096
    r, w = os.pipe()
    def drain():
        chunks = []
        while data := os.read(r, 65536):
            chunks.append(data)
        out.send(b"".join(chunks))
    gort.go(drain)
    assert os.write(w, big) == len(big)
    os.close(w)
    assert out.recv() == big
    os.close(r)

    path = os.path.join(os.getcwd(), "regular")
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    assert os.write(fd, b"file") == 4
    os.lseek(fd, 0, 0)
    assert os.read(fd, 10) == b"file" and os.read(fd, 10) == b""
    os.close(fd)
    r, w = os.pipe()
    os.set_blocking(r, False)
    try:
        os.read(r, 1)
    except BlockingIOError:
        pass
    else:
        raise AssertionError("a non-blocking read parked")
    os.close(r); os.close(w)
    for call in (lambda: os.read(r, 1), lambda: os.write(w, b"x")):
        try:
            call()
        except OSError as e:
            assert e.errno == 9 and e.strerror == "Bad file descriptor", e
        else:
            raise AssertionError("no EBADF")
    poller_idle()
    print("OK")

assert gort.monkey.is_patched("os") and gort.monkey.patch_os() is False
before = open_fds()
gort.run(prog, procs=PROCS)
assert open_fds() == before
r, w = os.pipe()                      # outside goroutines: the originals
assert os.write(w, b"out") == 3 and os.read(r, 10) == b"out"
os.close(r); os.close(w)
"""
    assert run(tmp_path, body, procs).strip() == "OK"


@pytest.mark.parametrize("procs", ["1", "2"])
def test_subprocess_run_in_100_goroutines(tmp_path: Path, procs: str) -> None:
    """100 goroutines each run a child that sleeps 0.2 s and writes to
    stdout and stderr (capture_output), then one with a single pipe, then
    one fed through stdin: every output right, all in far less than the
    sequential 20 s, no zombie and no descriptor left."""
    body = """
import subprocess

def prog():
    out = gort.Chan(100)
    def one(i):
        p = subprocess.run(["sh", "-c", f"sleep 0.2; echo {i}; echo e{i} >&2; exit {i % 3}"],
                           capture_output=True, text=True)
        q = subprocess.run(["echo", str(i)], stdout=subprocess.PIPE)
        c = subprocess.run(["cat"], input=b"in%d" % i, stdout=subprocess.PIPE)
        out.send((i, p.stdout, p.stderr, p.returncode, q.stdout, c.stdout))
    t0 = time.monotonic()
    for i in range(100):
        gort.go(one, i)
    got = sorted(out.recv() for _ in range(100))
    elapsed = time.monotonic() - t0
    want = [(i, f"{i}\\n", f"e{i}\\n", i % 3, b"%d\\n" % i, b"in%d" % i) for i in range(100)]
    assert got == want, got[:3]
    assert elapsed < 100 * 0.2 / 4, elapsed
    poller_idle()
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        pass                                  # no child left, zombie or not
    else:
        raise AssertionError("a child is left")
    print("OK")

assert gort.monkey.is_patched("subprocess") and gort.monkey.patch_subprocess() is False
before = open_fds()
gort.run(prog, procs=PROCS)
assert open_fds() == before, (before, open_fds())
"""
    assert run(tmp_path, body, procs).strip() == "OK"


def test_subprocess_timeouts_and_outside_goroutines(tmp_path: Path) -> None:
    """wait(timeout) and run(timeout) end in TimeoutExpired with the
    standard library's message while other goroutines keep running (a
    ticker counts on the only P); run kills the child it timed out; the
    originals run before gort.run and on a plain thread."""
    body = """
import subprocess

def prog():
    ticks = []
    stop = gort.Chan()
    def ticker():
        while True:
            i, ok = gort.select(stop.recv, gort.after(0.01).recv)
            if i == 0:
                return
            ticks.append(1)
    gort.go(ticker)
    p = subprocess.Popen(["sleep", "5"])
    try:
        p.wait(timeout=0.3)
    except subprocess.TimeoutExpired as e:
        assert str(e) == "Command '['sleep', '5']' timed out after 0.3 seconds", str(e)
    else:
        raise AssertionError("no TimeoutExpired")
    assert len(ticks) >= 5, len(ticks)       # the P ran the ticker meanwhile
    p.kill()
    assert p.wait() == -9 and p.returncode == -9
    t0 = time.monotonic()
    try:
        subprocess.run(["sh", "-c", "echo partial; sleep 5"], stdout=subprocess.PIPE, timeout=0.3)
    except subprocess.TimeoutExpired as e:
        assert e.timeout == 0.3 and e.output == b"partial\\n", (e.timeout, e.output)
    else:
        raise AssertionError("no TimeoutExpired")
    assert time.monotonic() - t0 < 4
    assert gort.syscall(subprocess.check_output, ["echo", "helper"]) == b"helper\\n"
    stop.close()
    poller_idle()
    print("OK")

assert subprocess.check_output(["echo", "before"]) == b"before\\n"
before = open_fds()
gort.run(prog, procs=PROCS)
assert open_fds() == before
assert subprocess.run(["cat"], input=b"after", capture_output=True).stdout == b"after"
"""
    assert run(tmp_path, body).strip() == "OK"


TLS_PRELUDE = """
import ssl, trustme
ca = trustme.CA()
cert = ca.issue_cert("localhost")
sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
cert.configure_cert(sctx)
cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ca.configure_trust(cctx)

def tls_client(port, payload):
    with cctx.wrap_socket(socket.create_connection(("127.0.0.1", port)),
                          server_hostname="localhost") as s:
        assert isinstance(s, ssl.SSLSocket) and s.version().startswith("TLS")
        s.sendall(payload)
        return s.makefile("rb").readline()
"""


@pytest.mark.parametrize("procs", ["1", "2"])
def test_tls_clients_and_server_on_goroutines(tmp_path: Path, procs: str) -> None:
    """A TLS server goroutine (wrap_socket on each accepted socket, handler
    holding each request 0.2 s) and 50 TLS client goroutines: every echo
    right, all in far less than 50 x 0.2 s; ssl was imported before
    patching (gort imports it), so the patched class is the context's."""
    body = (
        TLS_PRELUDE
        + """
N = 50

def prog():
    ln = socket.socket()
    ln.bind(("127.0.0.1", 0))
    ln.listen(128)
    port = ln.getsockname()[1]
    def handle(conn):
        with sctx.wrap_socket(conn, server_side=True) as t:
            line = t.makefile("rb").readline()
            time.sleep(0.2)
            t.sendall(line.upper())
    def serve():
        for _ in range(N):
            conn, _ = ln.accept()
            gort.go(handle, conn)
    gort.go(serve)
    out = gort.Chan(N)
    t0 = time.monotonic()
    for i in range(N):
        gort.go(lambda i=i: out.send(tls_client(port, b"hello %d\\n" % i)))
    got = sorted(out.recv() for _ in range(N))
    elapsed = time.monotonic() - t0
    assert got == sorted(b"HELLO %d\\n" % i for i in range(N)), got[:3]
    assert elapsed < N * 0.2 / 4, elapsed
    ln.close()
    print("OK")

assert gort.monkey.is_patched("ssl") and gort.monkey.patch_ssl() is False
assert ssl.SSLContext.sslsocket_class is gort.monkey.SSLSocket
before = open_fds()
gort.run(prog, procs=PROCS)
assert open_fds() == before
"""
    )
    assert run(tmp_path, body, procs).strip() == "OK"


def test_tls_timeouts_unwrap_and_outside_goroutines(tmp_path: Path) -> None:
    """A handshake against a peer that never speaks TLS and a read nobody
    answers end at the socket's timeout in the standard library's words,
    while a ticker goroutine keeps the only P; unwrap returns to plain TCP
    on both sides; before gort.run, the same client against a server on
    a plain thread runs the original blocking calls."""
    body = (
        TLS_PRELUDE
        + """
def prog():
    ticks = []
    stop = gort.Chan()
    def ticker():
        while gort.select(stop.recv, gort.after(0.01).recv)[0] == 1:
            ticks.append(1)
    gort.go(ticker)

    ln = socket.socket()
    ln.bind(("127.0.0.1", 0))
    ln.listen(8)
    port = ln.getsockname()[1]
    mute = []
    gort.go(lambda: mute.append(ln.accept()[0]))          # accepts, never speaks
    raw = socket.create_connection(("127.0.0.1", port))
    raw.settimeout(0.3)
    try:
        cctx.wrap_socket(raw, server_hostname="localhost")
    except TimeoutError as e:
        assert str(e) == "The handshake operation timed out", str(e)
    else:
        raise AssertionError("handshake did not time out")
    assert len(ticks) >= 5, len(ticks)

    # A TLS server that answers the handshake, then nothing, then unwraps.
    go_on = gort.Chan()
    def server():
        conn, _ = ln.accept()
        t = sctx.wrap_socket(conn, server_side=True)
        go_on.recv()
        plain = t.unwrap()
        assert plain.recv(5) == b"plain"
        plain.sendall(b"PLAIN")
        plain.close()
    gort.go(server)
    s = cctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
    s.settimeout(0.3)
    try:
        s.recv(10)
    except TimeoutError as e:
        assert str(e) == "The read operation timed out", str(e)
    else:
        raise AssertionError("read did not time out")
    s.settimeout(10)
    go_on.send(None)
    plain = s.unwrap()
    plain.sendall(b"plain")
    assert plain.recv(5) == b"PLAIN"
    plain.close()
    for c in mute:
        c.close()
    ln.close()
    stop.close()
    poller_idle()
    print("OK")

def outside():
    # The originals, the server on a plain thread: before the run.
    ln = socket.socket()
    ln.bind(("127.0.0.1", 0))
    ln.listen(8)
    def serve():
        conn, _ = ln.accept()
        with sctx.wrap_socket(conn, server_side=True) as t:
            t.sendall(t.makefile("rb").readline().upper())
    th = threading.Thread(target=serve)
    th.start()
    assert tls_client(ln.getsockname()[1], b"outside\\n") == b"OUTSIDE\\n"
    th.join()
    ln.close()

outside()
before = open_fds()
gort.run(prog, procs=PROCS)
assert open_fds() == before
"""
    )
    assert run(tmp_path, body).strip() == "OK"


def test_shared_slot_hand_over_and_adopted_registration(tmp_path: Path) -> None:
    """A select parked first on a socket's read side times out while a recv
    is queued behind it on the same side: the recv moves up and still wakes
    on the next send. A socket made before the run, first waited on by a
    select (registered for the call), is then adopted by its own recv's
    registration and stays registered (once) after the select returns."""
    body = """
a0, b0 = socket.socketpair()           # made outside the run: not registered

def prog():
    a, b = socket.socketpair()
    out = gort.Chan(2)
    gort.go(lambda: out.send(select.select([b], [], [], 0.2)))
    gort.sleep(0.05)                    # the select holds the slot first
    gort.go(lambda: out.send(b.recv(10)))
    assert out.recv() == ([], [], [])   # timed out, withdrew, the recv moved up
    a.send(b"after")
    assert out.recv() == b"after"
    a.close(); b.close()

    gort.go(lambda: out.send(select.select([b0], [], [], 10)[0] == [b0]))
    gort.sleep(0.05)
    assert len(sched.poller.fds) == 1 and sched.poller.fds[b0.fileno()].temp
    gort.go(lambda: out.send(b0.recv(1)))
    gort.sleep(0.05)
    a0.send(b"xy")
    assert sorted(map(repr, (out.recv(), out.recv()))) == ["True", "b'x'"]
    assert b0.recv(1) == b"y"
    assert not sched.poller.fds[b0.fileno()].temp   # b0's own registration, adopted
    poller_idle(owned=2)                # and a0's, made by its send
    print("OK")

before = open_fds()
gort.run(prog, procs=PROCS)
assert open_fds() == before
a0.send(b"z"); assert b0.recv(1) == b"z"   # back to a plain blocking socket
a0.close(); b0.close()
"""
    assert run(tmp_path, body).strip() == "OK"


def test_select_stress_two_procs_tiny_switch_interval(tmp_path: Path) -> None:
    """GOMAXPROCS 2, switch interval 1 us: 200 goroutines select/poll over
    4 shared pipes with timeouts that race the writers' events; every byte
    written is read exactly once, every wait returns, and nothing stays
    registered or parked."""
    body = """
import random
sys.setswitchinterval(1e-6)
ROUNDS = 200

def prog():
    pipes = [os.pipe() for _ in range(4)]
    for r, w in pipes:
        os.set_blocking(r, False)
    rs = [r for r, w in pipes]
    got = gort.Chan(ROUNDS)
    wrote = gort.Chan(ROUNDS)
    def reader(i):
        n = 0
        kind = i % 3
        for _ in range(3):
            if kind == 0:
                ready = select.select(rs, [], [], random.random() / 20)[0]
            elif kind == 1:
                po = select.poll()
                for r in rs:
                    po.register(r, select.POLLIN)
                ready = [fd for fd, _ in po.poll(random.random() * 50)]
            else:
                with selectors.DefaultSelector() as s:
                    for r in rs:
                        s.register(r, selectors.EVENT_READ)
                    ready = [k.fd for k, _ in s.select(random.random() / 20)]
            for r in ready:
                try:
                    n += len(os.read(r, 1000))
                except BlockingIOError:
                    pass                      # another reader took it first
        got.send(n)
    def writer(i):
        time.sleep(random.random() / 20)
        os.write(pipes[i % 4][1], b"x")
        wrote.send(1)
    for i in range(ROUNDS):
        gort.go(reader, i)
        gort.go(writer, i)
    total = sum(got.recv() for _ in range(ROUNDS))
    for _ in range(ROUNDS):
        wrote.recv()
    for r in rs:                               # what no reader was left to take
        try:
            total += len(os.read(r, 100000))
        except BlockingIOError:
            pass
    assert total == ROUNDS, total
    poller_idle()
    for r, w in pipes:
        os.close(r); os.close(w)
    assert len({m for m in sched.allp if m.switches}) == 2   # both Ps ran goroutines
    print("OK")

before = open_fds()
gort.run(prog, procs=2)
assert open_fds() == before
"""
    assert run(tmp_path, body, "2").strip() == "OK"
