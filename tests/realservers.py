"""Real servers for the gort.monkey acceptance tests and bench/monkey.py: a
redis-server, a PostgreSQL cluster and a threaded HTTP server, each started
in its own process on a free loopback port with its own temporary
directory, and a tiny SMTP server loop usable on any socket.

Each ``start_*`` returns a ``Server`` (``stop()`` kills it and removes its
directory) or raises ``Missing`` naming what is not installed, so a test can
skip with that reason (.ci/run installs them, so CI never does).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class Missing(RuntimeError):
    """A server's binary is not installed."""


def free_port() -> int:
    """A loopback port free now (the kernel's pick; a server binds it next)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(ready: Callable[[], bool], proc: subprocess.Popen[bytes], what: str) -> None:
    """Return once ready() holds; raise if proc exits first or after 30 s."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise RuntimeError(f"{what} exited with {proc.returncode}: {out}")
        try:
            if ready():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not become ready in 30 s")


@dataclass
class Server:
    port: int
    dir: str
    proc: subprocess.Popen[bytes]
    # Runs before the process is killed (pg_ctl stop); the directory goes after.
    stopper: Callable[[], None] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def stop(self) -> None:
        if self.stopper is not None:
            try:
                self.stopper()
            except (OSError, subprocess.SubprocessError):
                pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def _spawn(
    args: list[str],
    port: int,
    d: str,
    ready: Callable[[], bool],
    what: str,
    info: dict[str, Any] | None = None,
) -> Server:
    """Start args (cwd d) as the server on port; return once ready() holds."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=d)
    srv = Server(port, d, proc, info=info or {})
    try:
        wait_ready(ready, proc, what)
    except BaseException:
        srv.stop()
        raise
    return srv


def _listening(port: int) -> Callable[[], bool]:
    def connects() -> bool:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True

    return connects


# -- redis ---------------------------------------------------------------------


def _redis_pings(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
        s.sendall(b"PING\r\n")
        return s.recv(16).startswith(b"+PONG")


def start_redis() -> Server:
    """redis-server on a free port, persistence off, its dir a temp dir."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise Missing("redis-server is not installed (Debian: apt-get install redis-server)")
    d = tempfile.mkdtemp(prefix="gort-redis-")
    port = free_port()
    args = [exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", d, "--save", ""]
    args += ["--appendonly", "no", "--daemonize", "no", "--maxclients", "4096"]
    return _spawn(args, port, d, lambda: _redis_pings(port), "redis-server")


# -- PostgreSQL ----------------------------------------------------------------


def _pg_bindir() -> str:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    if found:
        return os.path.dirname(found[-1])
    exe = shutil.which("initdb")
    if exe is None:
        raise Missing("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    return os.path.dirname(exe)


def _as_pg_user() -> tuple[list[str], int | None]:
    """The command prefix that runs PostgreSQL's tools, and the uid owning
    its directory: root may not run postgres, so it runs as `postgres`."""
    if os.geteuid() != 0:
        return [], None
    try:
        pw = pwd.getpwnam("postgres")
    except KeyError:
        raise Missing("running as root and there is no `postgres` user to run PostgreSQL") from None
    runuser = shutil.which("runuser")
    if runuser is None:
        raise Missing("running as root and runuser(1) is missing")
    return [runuser, "-u", "postgres", "--"], pw.pw_uid


def _pg_accepts(port: int) -> bool:
    """A startup packet for a database that does not matter: any 'R' or 'E'
    reply means the postmaster is accepting connections (not starting up)."""
    with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
        params = b"user\0postgres\0database\0postgres\0\0"
        body = (196608).to_bytes(4, "big") + params
        s.sendall((len(body) + 4).to_bytes(4, "big") + body)
        reply = s.recv(4096)
        return reply[:1] == b"R" or (reply[:1] == b"E" and b"starting up" not in reply)


def start_postgres(max_connections: int = 300) -> Server:
    """A fresh cluster (initdb, trust auth, fsync off) on a free port of
    127.0.0.1, its data and socket directory a temp dir; user `postgres`."""
    bindir = _pg_bindir()
    prefix, uid = _as_pg_user()
    d = tempfile.mkdtemp(prefix="gort-pg-")
    if uid is not None:
        os.chown(d, uid, -1)
    data = os.path.join(d, "data")
    initdb = [*prefix, f"{bindir}/initdb", "-D", data, "-A", "trust", "-U", "postgres"]
    initdb += ["-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"]
    subprocess.run(initdb, check=True, capture_output=True, cwd=d)
    port = free_port()
    args = [*prefix, f"{bindir}/postgres", "-D", data, "-p", str(port), "-k", d]
    args += ["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]
    args += ["-c", f"max_connections={max_connections}", "-c", "shared_buffers=16MB"]
    info = {"dsn": f"host=127.0.0.1 port={port} user=postgres"}
    return _spawn(args, port, d, lambda: _pg_accepts(port), "postgres", info)


# -- HTTP ----------------------------------------------------------------------

_HTTP_SERVER = """
import sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DELAY = float(sys.argv[2])
conns = 0
lock = threading.Lock()

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive: the client's pool reuses connections

    def setup(self):
        global conns
        with lock:
            conns += 1
        super().setup()

    def do_GET(self):
        if self.path == "/stats":
            body = str(conns).encode()
        else:
            time.sleep(DELAY)
            body = self.path.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

class Server(ThreadingHTTPServer):
    request_queue_size = 1024
    daemon_threads = True

srv = Server(("127.0.0.1", int(sys.argv[1])), Handler)
if len(sys.argv) > 3:   # TLS: certificate chain and key files
    import ssl
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(sys.argv[3], sys.argv[4])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
"""


def start_http(delay: float, tls: tuple[str, str] | None = None) -> Server:
    """A ThreadingHTTPServer (HTTP/1.1, keep-alive) in a plain interpreter;
    every GET answers its path after `delay` seconds, GET /stats the number
    of connections accepted so far. tls: (certificate chain file, key file)
    for HTTPS."""
    port = free_port()
    d = tempfile.mkdtemp(prefix="gort-http-")
    args = [sys.executable, "-c", _HTTP_SERVER, str(port), str(delay), *(tls or ())]
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    return _spawn(args, port, d, _listening(port), "http server", {"url": url})


# -- SMTP ----------------------------------------------------------------------


def smtp_session(conn: Any, inbox: list[tuple[str, list[str], bytes]]) -> None:
    """Serve one SMTP client on conn (a connected socket, patched or not)
    until QUIT, appending (sender, recipients, message) per accepted mail:
    the subset of RFC 5321 smtplib's sendmail uses."""
    f = conn.makefile("rb")
    try:
        conn.sendall(b"220 gort-test ESMTP\r\n")
        sender, rcpts = "", []
        while line := f.readline():
            cmd = line[:4].upper()
            arg = line[5:].strip().decode()
            if cmd == b"EHLO":
                conn.sendall(b"250-gort-test\r\n250 8BITMIME\r\n")
            elif cmd in (b"HELO", b"RSET", b"NOOP"):
                sender, rcpts = ("", []) if cmd == b"RSET" else (sender, rcpts)
                conn.sendall(b"250 OK\r\n")
            elif cmd == b"MAIL":
                sender, rcpts = arg.partition(":")[2].strip("<> "), []
                conn.sendall(b"250 OK\r\n")
            elif cmd == b"RCPT":
                rcpts.append(arg.partition(":")[2].strip("<> "))
                conn.sendall(b"250 OK\r\n")
            elif cmd == b"DATA":
                conn.sendall(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                body = bytearray()
                while (data := f.readline()) not in (b".\r\n", b""):
                    body += data[1:] if data.startswith(b"..") else data
                inbox.append((sender, rcpts, bytes(body)))
                conn.sendall(b"250 OK queued\r\n")
            elif cmd == b"QUIT":
                conn.sendall(b"221 Bye\r\n")
                return
            else:
                conn.sendall(b"502 Command not implemented\r\n")
    finally:
        f.close()
        conn.close()


_SMTP_SERVER = """
import socketserver, sys
sys.path.insert(0, sys.argv[2])
from realservers import smtp_session

class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        smtp_session(self.request, [])

class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

Server(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def start_smtp() -> Server:
    """smtp_session on a thread per connection, in a plain interpreter."""
    port = free_port()
    d = tempfile.mkdtemp(prefix="gort-smtp-")
    here = os.path.dirname(os.path.abspath(__file__))
    args = [sys.executable, "-c", _SMTP_SERVER, str(port), here]
    return _spawn(args, port, d, _listening(port), "smtp server")
