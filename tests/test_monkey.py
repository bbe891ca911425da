"""gort.monkey: unmodified blocking code on goroutines.

Patching is process-global, so every scenario runs in its own interpreter
(tests/gortproc.py); each script asserts and prints what it found, and the
test checks the exit status and the output.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gortproc import run_script

pytestmark = pytest.mark.timeout(120)


def ok(p: subprocess.CompletedProcess[str]) -> str:
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


# A threaded HTTP server whose every request takes DELAY seconds: started by
# the script on plain threads (so its patched sockets run the original calls).
HTTP_SERVER = """
import socket, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DELAY = 0.1

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        time.sleep(DELAY)
        body = self.path.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

class Server(ThreadingHTTPServer):
    request_queue_size = 512
    daemon_threads = True

srv = Server(("127.0.0.1", 0), Handler)
threading.Thread(target=srv.serve_forever, daemon=True).start()
URL = f"http://127.0.0.1:{srv.server_address[1]}"
"""


@pytest.mark.parametrize("procs", ["1", "2"])
def test_requests_concurrent_on_goroutines(tmp_path: Path, procs: str) -> None:
    """50 goroutines x 4 GETs through requests/urllib3 against a server whose
    requests take 0.1 s each: all answers right, in far less than 20 s."""
    src = (
        HTTP_SERVER
        + """
import requests, gort, gort.monkey
assert gort.monkey.is_patched("socket") and isinstance(socket.socket(), gort.monkey.socket)
assert requests.get(URL + "/before").text == "/before"   # outside gort.run: the original calls

def main():
    wg = gort.WaitGroup()
    got = []
    def worker(i):
        try:
            with requests.Session() as s:
                for j in range(4):
                    got.append(s.get(f"{URL}/{i}/{j}", timeout=30).text)
        finally:
            wg.done()
    t0 = time.monotonic()
    for i in range(50):
        wg.add(1)
        gort.go(worker, i)
    wg.wait()
    elapsed = time.monotonic() - t0
    assert sorted(got) == sorted(f"/{i}/{j}" for i in range(50) for j in range(4)), got
    sequential = 50 * 4 * DELAY
    assert elapsed < sequential / 4, (elapsed, sequential)
    print("OK", len(got))
"""
    )
    p = run_script(tmp_path, src, cli=("--patch", "--procs", procs))
    assert ok(p).strip() == "OK 200"


def test_raw_socket_server_and_clients_on_goroutines(tmp_path: Path) -> None:
    """A listener goroutine accepts; each connection echoes 1 MiB (sendall
    meets a full send buffer and parks); 20 clients check every byte."""
    src = """
    import socket, hashlib, gort

    N = 20
    PAYLOAD = bytes(range(256)) * 4096   # 1 MiB

    def echo(conn):
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                conn.sendall(data)

    def main():
        ln = socket.socket()
        ln.bind(("127.0.0.1", 0))
        ln.listen(64)
        port = ln.getsockname()[1]
        def serve():
            for _ in range(N):
                conn, _ = ln.accept()
                assert conn.gettimeout() is None
                gort.go(echo, conn)
        gort.go(serve)
        results = gort.Chan(N)
        def client(i):
            c = socket.create_connection(("localhost", port))
            def send():
                c.sendall(PAYLOAD)
                c.shutdown(socket.SHUT_WR)
            gort.go(send)
            buf = bytearray()
            while chunk := c.recv(65536):
                buf += chunk
            c.close()
            results.send(bytes(buf) == PAYLOAD)
        for i in range(N):
            gort.go(client, i)
        assert all(results.recv() for _ in range(N))
        ln.close()
        print("OK")
    """
    assert ok(run_script(tmp_path, src, cli=("--patch",))).strip() == "OK"


def test_socket_timeout_is_a_deadline_and_others_run(tmp_path: Path) -> None:
    """recv on a silent peer with settimeout(0.3) raises the stdlib's
    TimeoutError("timed out") while other goroutines keep running on the
    only P; a timeout of 0 raises BlockingIOError at once."""
    src = """
    import socket, time, gort

    def main():
        a, b = socket.socketpair()
        assert type(a) is socket.socket
        a.settimeout(0.3)
        ticks = []
        done = []
        def ticker():
            while not done:
                ticks.append(1)
                time.sleep(0.01)
        gort.go(ticker)
        t0 = time.monotonic()
        try:
            a.recv(10)
        except socket.timeout as e:
            assert isinstance(e, TimeoutError) and str(e) == "timed out", repr(e)
        else:
            raise AssertionError("no timeout")
        elapsed = time.monotonic() - t0
        done.append(True)
        assert 0.25 < elapsed < 5, elapsed
        assert len(ticks) >= 5, len(ticks)   # the M was not blocked
        assert a.gettimeout() == 0.3 and a.timeout == 0.3 and a.getblocking()
        b.send(b"late")
        assert a.recv(10) == b"late"          # the timeout left the socket usable
        a.setblocking(False)
        try:
            a.recv(10)
        except BlockingIOError:
            pass
        else:
            raise AssertionError("non-blocking recv did not raise")
        a.close(); b.close()
        print("OK")
    """
    assert ok(run_script(tmp_path, src, cli=("--patch",))).strip() == "OK"


def test_patched_socket_outside_run_and_across_runs(tmp_path: Path) -> None:
    """A socket made before gort.run works before, inside and after it, with
    its blocking mode intact; the run does not close it, but closes the
    socket a goroutine made and left open."""
    src = """
    import socket, gort, gort.monkey

    def main():
        pass

    if __name__ == "__main__":
        gort.monkey.patch_all()
        a, b = socket.socketpair()
        a.sendall(b"1"); assert b.recv(1) == b"1"
        leaked = []
        def inside():
            a.sendall(b"2"); assert b.recv(1) == b"2"
            assert b.gettimeout() is None
            s = socket.socket(); leaked.append(s)
            s.bind(("127.0.0.1", 0)); s.listen(1)
            c = socket.create_connection(s.getsockname())
            conn, _ = s.accept()
            leaked.extend((c, conn))
        for _ in range(2):
            gort.run(inside)
            assert b.getblocking() and b.gettimeout() is None
            a.sendall(b"3"); assert b.recv(1) == b"3"   # blocking mode is back
            assert all(s.fileno() == -1 for s in leaked), leaked
        a.close(); b.close()
        print("OK")
    """
    p = subprocess.run(
        [__import__("sys").executable, str(_write(tmp_path, src))],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert ok(p).strip() == "OK"


def test_patch_twice_is_noop_and_is_patched(tmp_path: Path) -> None:
    src = """
    import socket, time, select, gort.monkey as m

    def main():
        assert not m.is_patched("socket") and not m.is_patched("time")
        orig = socket.socket
        assert m.patch_socket() is True and m.patch_socket() is False
        patched = socket.socket
        m.patch_all(); m.patch_all()
        assert socket.socket is patched and patched.__mro__[1] is orig
        assert all(m.is_patched(n) for n in ("socket", "time", "select"))
        assert m.is_patched("ssl") and not m.is_patched("json")
        try:
            m.is_patched(3)
        except TypeError:
            pass
        else:
            raise AssertionError("no TypeError")
        print("OK")
    """
    assert ok(run_script(tmp_path, src)).strip() == "OK"


def test_sleep_and_select_park_the_goroutine(tmp_path: Path) -> None:
    """100 goroutines in time.sleep(0.2) and 20 in select.select(timeout=0.2)
    on one P finish together; select still returns a ready descriptor."""
    src = """
    import select, socket, time, gort

    def main():
        wg = gort.WaitGroup()
        def sleeper():
            time.sleep(0.2); wg.done()
        def selector():
            assert select.select([r], [], [], 0.2) == ([], [], [])
            wg.done()
        r, w = socket.socketpair()
        t0 = time.monotonic()
        for _ in range(100):
            wg.add(1); gort.go(sleeper)
        for _ in range(20):
            wg.add(1); gort.go(selector)
        wg.wait()
        elapsed = time.monotonic() - t0
        assert elapsed < 0.2 * 120 / 4, elapsed
        w.send(b"x")
        assert select.select([r], [], [], 5) == ([r], [], [])
        try:
            time.sleep(-1)
        except ValueError:
            pass
        else:
            raise AssertionError("negative sleep accepted")
        r.close(); w.close()
        print("OK")
    """
    assert ok(run_script(tmp_path, src, cli=("--patch", "--procs", "1"))).strip() == "OK"


def test_late_patch_warns_and_old_sockets_keep_working(tmp_path: Path) -> None:
    """patch_all after the program made sockets warns, naming socket and the
    module that imported it; a socket made before keeps working."""
    src = """
    import socket
    import warnings

    old_a, old_b = socket.socketpair()

    def main():
        import gort.monkey
        with warnings.catch_warnings(record=True) as ws:
            warnings.simplefilter("always")
            gort.monkey.patch_all()
            gort.monkey.patch_all()
        assert len(ws) == 1, [str(w.message) for w in ws]
        msg = str(ws[0].message)
        assert ws[0].category is gort.monkey.MonkeyWarning
        assert "socket" in msg and "prog" in msg and "prog.py" in msg, msg
        assert type(old_a) is not socket.socket      # stays unpatched...
        old_a.sendall(b"ping")
        assert old_b.recv(4) == b"ping"              # ...and works
        print("OK")
    """
    assert ok(run_script(tmp_path, src)).strip() == "OK"


def test_gort_net_works_under_patch(tmp_path: Path) -> None:
    """gort.net makes its sockets with socket.socket: patched, they still
    register once with the poller and serve."""
    src = """
    import gort

    def main():
        ln = gort.net.listen("tcp", "127.0.0.1:0")
        def serve():
            c = ln.accept()
            c.write(c.read(100).upper())
            c.close()
        gort.go(serve)
        c = gort.net.dial("tcp", str(ln.addr))
        c.write(b"hi")
        assert c.read(100) == b"HI"
        c.close(); ln.close()
        print("OK")
    """
    assert ok(run_script(tmp_path, src, cli=("--patch",))).strip() == "OK"


def test_no_patch_without_flag(tmp_path: Path) -> None:
    src = """
    import socket, gort.monkey

    def main():
        assert not gort.monkey.is_patched("socket")
        assert not isinstance(socket.socket(), gort.monkey.socket)
        print("OK")
    """
    assert ok(run_script(tmp_path, src)).strip() == "OK"


def test_offload_runs_on_a_helper(tmp_path: Path) -> None:
    """offload(fn) from a goroutine runs fn on another thread, leaving the P
    to the others; outside a goroutine it is a plain call."""
    src = """
    import threading, time, gort
    from gort.monkey import offload

    orig_sleep = time.sleep

    @offload
    def blocking(x):
        orig_sleep(0.2)
        return x, threading.get_ident()

    def main():
        me = threading.get_ident()
        ticks = []
        def ticker():
            for _ in range(5):
                ticks.append(1); gort.sleep(0.01)
        gort.go(ticker)
        v, tid = blocking(7)
        assert v == 7 and tid != me and len(ticks) == 5, (tid, me, ticks)
        print("OK")

    assert blocking(1) == (1, threading.get_ident())
    """
    assert ok(run_script(tmp_path, src)).strip() == "OK"


def _write(tmp_path: Path, src: str) -> Path:
    import textwrap

    path = tmp_path / "plain.py"
    path.write_text(textwrap.dedent(src))
    return path


def _env() -> dict[str, str]:
    from gortproc import gort_env

    return gort_env()
