"""Issue 12's acceptance: unmodified blocking libraries against real servers
the tests start themselves (tests/realservers.py), on goroutines under
``gort.monkey.patch_all()``.

Each scenario is a fresh interpreter (patching is process-global) that
patches, imports the library, runs ``gort.run(main, procs=N)`` and then
checks that the run left no descriptor open and no thread running. The
servers run in their own processes, shared by the tests of a session.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import realservers
from gortproc import SRC, gort_env
from httpproc import ServerProc

pytestmark = pytest.mark.timeout(180)

TESTS = Path(__file__).resolve().parent

# Every script starts so: patch first, then the libraries; run_checked runs
# main and asserts that the run closed what it opened and stopped its threads.
PRELUDE = """
import os, sys, threading, time
import gort, gort.monkey
gort.monkey.patch_all()
import realservers

PROCS = int(os.environ["GORT_TEST_PROCS"])

def snapshot():
    return sorted(os.listdir("/proc/self/fd")), sorted(t.ident for t in threading.enumerate())

# fn(i) for i in range(n), each on its own goroutine; the seconds until all
# returned (an exception in one panics the run).
def fan_out(n, fn):
    wg = gort.WaitGroup()
    def one(i):
        try:
            fn(i)
        finally:
            wg.done()
    t0 = time.monotonic()
    for i in range(n):
        wg.add(1)
        gort.go(one, i)
    wg.wait()
    return time.monotonic() - t0

# A goroutine appending to the returned list every 10 ms until stop() is
# called: proof that the M runs other goroutines meanwhile.
def ticking():
    ticks, done = [], []
    def tick():
        while not done:
            ticks.append(1)
            time.sleep(0.01)
    gort.go(tick)
    return ticks, lambda: done.append(1)

def run_checked(main):
    before = snapshot()
    gort.run(main, procs=PROCS)
    after = snapshot()
    assert before == after, ("left behind", before, after)
    print("OK")
"""


def run_prog(
    tmp_path: Path, body: str, procs: int, env: dict[str, str], timeout: float = 120
) -> str:
    """PRELUDE + body as a fresh interpreter; its stdout, after checking it
    exited 0 and printed OK last."""
    script = tmp_path / "prog.py"
    script.write_text(PRELUDE + textwrap.dedent(body) + "\nrun_checked(main)\n")
    extra = {"GORT_TEST_PROCS": str(procs), "PYTHONPATH": f"{SRC}{os.pathsep}{TESTS}", **env}
    p = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env=gort_env(extra),
        timeout=timeout,
        cwd=tmp_path,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.splitlines()[-1] == "OK", p.stdout + p.stderr
    return p.stdout


def _server(start: str) -> Iterator[realservers.Server]:
    try:
        srv = getattr(realservers, start)()
    except realservers.Missing as e:
        pytest.skip(str(e))
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def redis_server() -> Iterator[realservers.Server]:
    yield from _server("start_redis")


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[realservers.Server]:
    yield from _server("start_postgres")


HTTP_DELAY = 0.2


@pytest.fixture(scope="module")
def http_server() -> Iterator[realservers.Server]:
    srv = realservers.start_http(HTTP_DELAY)
    try:
        yield srv
    finally:
        srv.stop()


procs_1_2 = pytest.mark.parametrize("procs", [1, 2], ids=["P1", "P2"])


# -- requests / urllib3 ---------------------------------------------------------


@procs_1_2
def test_requests_200_goroutines_x10_gets(
    tmp_path: Path, http_server: realservers.Server, procs: int
) -> None:
    """200 goroutines, each a requests.Session doing 10 GETs against a
    server taking 0.2 s per request: every answer right, connections kept
    alive by urllib3's pool (one per session), and the 2,000 requests done
    at least 20x faster than one after the other (400 s)."""
    body = """
    import requests
    URL = os.environ["URL"]
    DELAY = float(os.environ["DELAY"])

    def main():
        conns0 = int(requests.get(URL + "/stats").text)
        got = []
        def worker(i):
            with requests.Session() as s:
                for j in range(10):
                    r = s.get(f"{URL}/{i}/{j}", timeout=60)
                    assert r.status_code == 200
                    got.append(r.text)
        elapsed = fan_out(200, worker)
        assert sorted(got) == sorted(f"/{i}/{j}" for i in range(200) for j in range(10))
        assert 10 * DELAY <= elapsed < 2000 * DELAY / 20, elapsed
        new_conns = int(requests.get(URL + "/stats").text) - conns0
        assert 200 <= new_conns <= 210, new_conns   # keep-alive: one per session (+ /stats)
        print("elapsed", elapsed)
    """
    env = {"URL": http_server.info["url"], "DELAY": str(HTTP_DELAY)}
    run_prog(tmp_path, body, procs, env)


@pytest.fixture(scope="module")
def https_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[realservers.Server]:
    trustme = pytest.importorskip("trustme")
    d = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    pem, ca_pem = str(d / "server.pem"), str(d / "ca.pem")
    cert.private_key_and_cert_chain_pem.write_to_path(pem)
    ca.cert_pem.write_to_path(ca_pem)
    srv = realservers.start_http(HTTP_DELAY, tls=(pem, pem))
    srv.info["ca"] = ca_pem
    try:
        yield srv
    finally:
        srv.stop()


@procs_1_2
def test_requests_https_goroutines(
    tmp_path: Path, https_server: realservers.Server, procs: int
) -> None:
    """50 goroutines x 4 GETs through requests over TLS (certificate checked
    against a test CA) to a server taking 0.2 s per request: right answers,
    overlapping (far under the 40 s they take in turn); the system's CAs
    reject the test CA's certificate."""
    body = """
    import requests
    URL = os.environ["URL"]
    CA = os.environ["CA"]
    DELAY = float(os.environ["DELAY"])

    def main():
        got = []
        def worker(i):
            with requests.Session() as s:
                for j in range(4):
                    got.append(s.get(f"{URL}/{i}/{j}", timeout=60, verify=CA).text)
        elapsed = fan_out(50, worker)
        assert sorted(got) == sorted(f"/{i}/{j}" for i in range(50) for j in range(4))
        assert 4 * DELAY <= elapsed < 200 * DELAY / 10, elapsed
        try:
            requests.get(URL, timeout=60)
        except requests.exceptions.SSLError:
            pass
        else:
            raise AssertionError("an unknown CA was accepted")
    """
    env = {"URL": https_server.info["url"], "CA": https_server.info["ca"]}
    run_prog(tmp_path, body, procs, {**env, "DELAY": str(HTTP_DELAY)})


@procs_1_2
def test_urllib3_pool_shared_by_goroutines(
    tmp_path: Path, http_server: realservers.Server, procs: int
) -> None:
    """One urllib3.PoolManager (10 connections, non-blocking pool) shared by
    100 goroutines x 3 GETs: right answers, concurrent, and the pool keeps
    no more than its size."""
    body = """
    import logging, urllib3
    logging.getLogger("urllib3").setLevel(logging.ERROR)   # "pool is full" is expected
    URL = os.environ["URL"]
    DELAY = float(os.environ["DELAY"])

    def main():
        http = urllib3.PoolManager(maxsize=10)
        got = []
        def worker(i):
            for j in range(3):
                got.append(http.request("GET", f"{URL}/{i}/{j}", timeout=60).data.decode())
        elapsed = fan_out(100, worker)
        assert sorted(got) == sorted(f"/{i}/{j}" for i in range(100) for j in range(3))
        assert elapsed < 300 * DELAY / 10, elapsed
        pool = http.connection_from_url(URL)
        assert pool.pool.qsize() <= 10
        http.clear()
    """
    env = {"URL": http_server.info["url"], "DELAY": str(HTTP_DELAY)}
    run_prog(tmp_path, body, procs, env)


@procs_1_2
def test_urllib3_blocking_pool_waits_on_goroutines(
    tmp_path: Path, http_server: realservers.Server, procs: int
) -> None:
    """A blocking urllib3 pool (block=True, 5 connections) shared by 50
    goroutines: the ones finding it empty wait in queue.get for a
    connection (a Condition wait that must park the goroutine, not the M)."""
    body = """
    import urllib3
    URL = os.environ["URL"]
    DELAY = float(os.environ["DELAY"])

    def main():
        http = urllib3.PoolManager(maxsize=5, block=True)
        got = []
        def worker(i):
            got.append(http.request("GET", f"{URL}/{i}", timeout=60).data.decode())
        elapsed = fan_out(50, worker)
        assert sorted(got) == sorted(f"/{i}" for i in range(50))
        assert 10 * DELAY <= elapsed < 50 * DELAY * 0.6, elapsed   # 5 at a time, not 1
        http.clear()
    """
    env = {"URL": http_server.info["url"], "DELAY": str(HTTP_DELAY)}
    run_prog(tmp_path, body, procs, env)


# -- redis-py -----------------------------------------------------------------------


@procs_1_2
def test_redis_500_goroutines_x100_commands(
    tmp_path: Path, redis_server: realservers.Server, procs: int
) -> None:
    """500 goroutines share one redis.Redis (its connection pool): each does
    30 SET, 30 GET, a MULTI/EXEC pipeline of 38 commands, an LRANGE and a
    PUBLISH (100 commands); a subscriber goroutine, blocked in get_message
    on its own connection, receives every publication. Values checked."""
    body = """
    import redis
    PORT = int(os.environ["REDIS_PORT"])

    def main():
        r = redis.Redis(port=PORT, max_connections=600, health_check_interval=30)
        r.flushdb()
        ch = f"news{PROCS}"
        ps = r.pubsub()
        ps.subscribe(ch)
        first = ps.get_message(timeout=10)
        assert first["type"] == "subscribe", first
        heard = []
        listening = gort.Chan()
        def subscriber():
            try:
                while len(heard) < 500:
                    m = ps.get_message(timeout=30)
                    assert m is not None, "subscriber timed out"
                    heard.append(int(m["data"]))
            finally:
                listening.close()
        gort.go(subscriber)

        bad = []
        def worker(i):
            for j in range(30):
                assert r.set(f"k{i}:{j}", f"v{i}:{j}") is True
            for j in range(30):
                if r.get(f"k{i}:{j}") != f"v{i}:{j}".encode():
                    bad.append((i, j))
            p = r.pipeline(transaction=True)
            for _ in range(10):
                p.incr(f"c{i}")
            for j in range(28):
                p.rpush(f"l{i}", j)
            assert p.execute() == list(range(1, 11)) + list(range(1, 29))
            assert r.lrange(f"l{i}", 0, -1) == [str(j).encode() for j in range(28)]
            assert r.publish(ch, i) == 1
        elapsed = fan_out(500, worker)
        assert listening.recv2() == (None, False)   # closed: the subscriber is done
        assert not bad, bad[:5]
        assert sorted(heard) == list(range(500))
        assert r.dbsize() == 500 * 32   # 30 strings, a counter, a list each
        ps.close()
        r.close()
        print("elapsed", elapsed)
    """
    run_prog(tmp_path, body, procs, {"REDIS_PORT": str(redis_server.port)})


# -- psycopg 3 ----------------------------------------------------------------------

PG_FANOUT = """
    import psycopg
    DSN = os.environ["DSN"]

    def main():
        assert psycopg.waiting.wait is gort.monkey._psycopg.wait
        assert psycopg.waiting.wait_conn is gort.monkey._psycopg.wait_conn
        assert gort.monkey._psycopg._hook not in sys.meta_path   # gone once applied
        gate = gort.Chan()
        connected = gort.WaitGroup()
        wg = gort.WaitGroup()
        got = []
        def worker(i):
            try:
                with psycopg.connect(DSN, connect_timeout=30) as conn:
                    connected.done()
                    gate.recv()
                    row = conn.execute("SELECT pg_sleep(0.2), %s::int * 2", (i,)).fetchone()
                    got.append(row[1])
            finally:
                wg.done()
        for i in range(50):
            connected.add(1)
            wg.add(1)
            gort.go(worker, i)
        connected.wait()
        ticks, stop = ticking()
        t0 = time.monotonic()
        gate.close()
        wg.wait()
        elapsed = time.monotonic() - t0
        stop()
        assert sorted(got) == [2 * i for i in range(50)], got
        assert 0.2 <= elapsed < 50 * 0.2 / 4, elapsed
        assert len(ticks) >= 5, len(ticks)   # the M kept running other goroutines
        print("elapsed", elapsed)
"""


@procs_1_2
def test_psycopg_50_goroutines_pg_sleep(
    tmp_path: Path, postgres_server: realservers.Server, procs: int
) -> None:
    """50 connections (made through the patched wait_conn), each running
    SELECT pg_sleep(0.2): all the queries overlap (done in well under the
    10 s they take one after the other) and a ticker goroutine runs
    meanwhile; values checked. psycopg is imported after patch_all, so the
    import hook applies the patch."""
    run_prog(tmp_path, PG_FANOUT, procs, {"DSN": postgres_server.info["dsn"]})


def test_psycopg_imported_before_patching(
    tmp_path: Path, postgres_server: realservers.Server
) -> None:
    """psycopg already imported when patch_all runs: patched at once, with
    the same behaviour."""
    body = PG_FANOUT.replace("    import psycopg\n", "", 1)
    script = "import psycopg\n" + PRELUDE + textwrap.dedent(body) + "\nrun_checked(main)\n"
    p = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=gort_env(
            {
                "GORT_TEST_PROCS": "1",
                "PYTHONPATH": f"{SRC}{os.pathsep}{TESTS}",
                "DSN": postgres_server.info["dsn"],
            }
        ),
        timeout=120,
        cwd=tmp_path,
    )
    assert p.returncode == 0 and p.stdout.splitlines()[-1] == "OK", p.stdout + p.stderr


def test_psycopg_errors_timeouts_and_outside_run(
    tmp_path: Path, postgres_server: realservers.Server
) -> None:
    """A server error surfaces as psycopg's exception and leaves the
    connection usable; a connect_timeout against a listener that never
    answers raises ConnectionTimeout after it while other goroutines run; a
    descriptor the poller refuses waits on a syscall helper; outside
    gort.run the original wait functions serve the same calls."""
    body = """
    import socket, psycopg
    DSN = os.environ["DSN"]

    with psycopg.connect(DSN) as conn:   # before the run: psycopg's own waits
        assert conn.execute("SELECT 40 + 2").fetchone() == (42,)

    def main():
        with psycopg.connect(DSN, autocommit=True) as conn:
            try:
                conn.execute("SELECT 1 / 0")
            except psycopg.errors.DivisionByZero:
                pass
            else:
                raise AssertionError("no DivisionByZero")
            assert conn.execute("SELECT 'still' || ' here'").fetchone() == ("still here",)
            with conn.pipeline():
                cur = conn.cursor()
                cur.execute("SELECT 1")
                cur2 = conn.cursor()
                cur2.execute("SELECT generate_series(1, 1000)")
            assert cur.fetchall() == [(1,)]
            assert [r[0] for r in cur2.fetchall()] == list(range(1, 1001))

        # A descriptor the poller refuses (already registered, say): the
        # wait runs psycopg's own function on a syscall helper instead.
        def refuse(*args):
            raise PermissionError(1, "refused")
        gort.monkey._psycopg.poll_wait_any, orig = refuse, gort.monkey._psycopg.poll_wait_any
        with psycopg.connect(DSN) as conn:
            ticks, stop = ticking()
            assert conn.execute("SELECT pg_sleep(0.2), 7").fetchone() == ("", 7)
            stop()
            assert len(ticks) >= 5, len(ticks)
        gort.monkey._psycopg.poll_wait_any = orig

        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)                     # accepts in the kernel, never answers
        port = silent.getsockname()[1]
        ticks, stop = ticking()
        t0 = time.monotonic()
        try:
            psycopg.connect(f"host=127.0.0.1 port={port} user=x connect_timeout=2")
        except psycopg.OperationalError as e:
            assert "timeout" in str(e), e
        else:
            raise AssertionError("connected to a silent server")
        elapsed = time.monotonic() - t0
        stop()
        assert 1.9 <= elapsed < 10, elapsed
        assert len(ticks) >= 20, len(ticks)
        silent.close()
        # psycopg's timed-out connection attempt (a generator in a reference
        # cycle) holds its socket until the cycle collector runs, patched or not.
        import gc; gc.collect()
    """
    run_prog(tmp_path, body, 1, {"DSN": postgres_server.info["dsn"]})


# -- stdlib -----------------------------------------------------------------------------


@procs_1_2
def test_smtplib_against_smtp_server_goroutine(tmp_path: Path, procs: int) -> None:
    """An SMTP server goroutine (a listener goroutine, one goroutine per
    session) and 50 goroutines each sending 3 mails through smtplib on one
    connection: every mail arrives with its sender, recipients and body."""
    body = """
    import smtplib, socket
    from email.message import EmailMessage

    def main():
        inbox = []
        ln = socket.socket()
        ln.bind(("127.0.0.1", 0))
        ln.listen(128)
        port = ln.getsockname()[1]
        def serve():
            while True:
                try:
                    conn, _ = ln.accept()
                except OSError:
                    return   # closed: the test is over
                gort.go(realservers.smtp_session, conn, inbox)
        gort.go(serve)

        def client(i):
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
                for j in range(3):
                    msg = EmailMessage()
                    msg["From"] = f"a{i}@example.com"
                    msg["To"] = f"b{i}@example.com"
                    msg["Subject"] = f"mail {i}.{j}"
                    msg.set_content(f"body {i}.{j}\\n.leading dot\\n")
                    assert s.send_message(msg) == {}
        fan_out(50, client)
        ln.close()
        assert len(inbox) == 150, len(inbox)
        seen = set()
        for sender, rcpts, data in inbox:
            i = int(sender[1:].split("@")[0])
            assert rcpts == [f"b{i}@example.com"], rcpts
            text = data.decode()
            j = int(text.split(f"Subject: mail {i}.")[1][0])
            assert f"body {i}.{j}\\r\\n.leading dot\\r\\n" in text, text
            seen.add((i, j))
        assert seen == {(i, j) for i in range(50) for j in range(3)}
    """
    run_prog(tmp_path, body, procs, {})


@procs_1_2
def test_subprocess_run_in_100_goroutines(tmp_path: Path, procs: int) -> None:
    """100 goroutines each subprocess.run a shell sleeping 0.3 s and echoing
    its number: every output right, all overlapping (far under 30 s)."""
    body = """
    import subprocess

    def main():
        got = []
        def worker(i):
            p = subprocess.run(["sh", "-c", f"sleep 0.3; echo {i}"],
                               capture_output=True, text=True, timeout=60, check=True)
            got.append(int(p.stdout))
        elapsed = fan_out(100, worker)
        assert sorted(got) == list(range(100))
        assert elapsed < 100 * 0.3 / 4, elapsed
    """
    run_prog(tmp_path, body, procs, {})


@procs_1_2
def test_socketserver_threading_tcp_server_on_goroutines(tmp_path: Path, procs: int) -> None:
    """socketserver.ThreadingTCPServer inside gort.run: serve_forever waits
    in a selector and each request's thread is a goroutine; 50 clients at
    once, each held 0.2 s by the handler, are served together; shutdown()
    stops it."""
    body = """
    import socket, socketserver

    class Upper(socketserver.StreamRequestHandler):
        def handle(self):
            line = self.rfile.readline()
            time.sleep(0.2)
            self.wfile.write(line.upper())

    def main():
        # 50 connects at once: socketserver's default backlog of 5 would drop
        # SYNs (retried after 1 s by the kernel) whenever the clients run
        # before the acceptor, as they do when it parks on the poller.
        socketserver.ThreadingTCPServer.request_queue_size = 64
        srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Upper)
        srv.daemon_threads = False
        port = srv.server_address[1]
        t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
        t.start()
        got = []
        def client(i):
            with socket.create_connection(("127.0.0.1", port)) as c:
                c.sendall(f"hello {i}\\n".encode())
                got.append(c.makefile("rb").readline())
        elapsed = fan_out(50, client)
        srv.shutdown()
        t.join()
        srv.server_close()
        assert sorted(got) == sorted(f"HELLO {i}\\n".encode() for i in range(50))
        assert elapsed < 50 * 0.2 / 4, elapsed
    """
    run_prog(tmp_path, body, procs, {})


@procs_1_2
def test_thread_pool_executor_map(tmp_path: Path, procs: int) -> None:
    """ThreadPoolExecutor(20).map over 100 items that each sleep 0.1 s:
    results in input order, 20 at a time (about 0.5 s, far under 10 s);
    the pool's workers are gone after shutdown."""
    body = """
    from concurrent.futures import ThreadPoolExecutor

    def work(i):
        time.sleep(0.1)
        return i * i

    def main():
        t0 = time.monotonic()
        with ThreadPoolExecutor(max_workers=20) as ex:
            got = list(ex.map(work, range(100)))
        elapsed = time.monotonic() - t0
        assert got == [i * i for i in range(100)]
        assert 0.5 <= elapsed < 100 * 0.1 / 4, elapsed
    """
    run_prog(tmp_path, body, procs, {})


# -- python -m gort.http --patch ---------------------------------------------------


def _get(port: int) -> bytes:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        c.request("GET", "/")
        r = c.getresponse()
        assert r.status == 200
        return r.read()
    finally:
        c.close()


@pytest.mark.parametrize("patch", [True, False], ids=["patch", "nopatch"])
def test_gort_http_patch_flag(patch: bool) -> None:
    """`python -m gort.http --patch` patches before importing the app: 20
    requests to an app that calls time.sleep(0.3) overlap on one P (far
    under the 6 s they take in turn) and the app sees socket patched;
    without the flag nothing is patched."""
    flags = ("--patch",) if patch else ()
    s = ServerProc("--bind", "127.0.0.1:0", "--procs", "1", *flags, "monkey_http_app:app")
    try:
        if not patch:
            assert _get(s.port) == b"False"
            return
        t0 = time.monotonic()
        with ThreadPoolExecutor(20) as ex:
            bodies = list(ex.map(lambda _: _get(s.port), range(20)))
        elapsed = time.monotonic() - t0
        assert bodies == [b"True"] * 20
        assert elapsed < 20 * 0.3 / 3, elapsed
    finally:
        assert s.stop() == 0
