"""``python -m gort.http [--bind H:P] [--workers N] [--patch] module:app``: serve
a WSGI application or a gort handler.

--patch runs ``gort.monkey.patch_all()`` before the app is imported, so the
blocking libraries it calls (requests, redis, psycopg...) park its goroutine
instead of holding the M.

Without --workers the app is served by this process (one gort runtime).
With --workers N this process becomes a supervisor (no runtime of its own)
that starts N worker processes, each running a gort runtime on the same port
(SO_REUSEPORT: the kernel spreads connections over them); it restarts a
worker that dies, and on SIGTERM or SIGINT it asks every worker to shut down
gracefully (stop accepting, finish the requests in flight) and exits when
they have. That is how a GIL build of Python uses every core.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import gort

from .servemux import ServeMux
from .server import HandlerFunc, Server, as_handler_func
from .wsgi import wsgi

SIGNALS = (signal.SIGTERM, signal.SIGINT)


def load_app(spec: str) -> Any:
    """The object named by "module:attr" (attr may be dotted; "app" by default)."""
    module_name, _, attr = spec.partition(":")
    if not module_name:
        raise SystemExit(f"gort.http: bad app {spec!r} (want module:app)")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    obj: Any = importlib.import_module(module_name)
    for part in (attr or "app").split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise SystemExit(f"gort.http: {module_name} has no attribute {attr!r}") from None
    return obj


def is_handler(app: Any) -> bool:
    """True for a gort handler (w, r); False for a WSGI app (environ, start_response).

    ServeMux and objects with serve_http are handlers; a function is a handler
    when its parameters are annotated with ResponseWriter/Request or are named
    (w, r); anything else is taken for WSGI (Flask, Django...)."""
    if isinstance(app, ServeMux) or hasattr(app, "serve_http"):
        return True
    try:
        params = list(inspect.signature(app).parameters.values())
    except (TypeError, ValueError):
        return False
    if len(params) != 2:
        return False
    ann = " ".join(str(p.annotation) for p in params)
    if "ResponseWriter" in ann or "Request" in ann:
        return True
    return [p.name for p in params] == ["w", "r"]


def make_handler(app: Any, interface: str, multiprocess: bool) -> HandlerFunc:
    if interface == "handler" or (interface == "auto" and is_handler(app)):
        return as_handler_func(app)
    return wsgi(app, multiprocess=multiprocess)


def _split_bind(bind: str) -> tuple[str, int]:
    host, _, port = bind.rpartition(":")
    if not port.isdigit():
        raise SystemExit(f"gort.http: bad --bind {bind!r} (want HOST:PORT)")
    return host.strip("[]") or "0.0.0.0", int(port)


def serve_main(handler: HandlerFunc, bind: str, reuse_port: bool, opts: argparse.Namespace) -> int:
    """The body of one runtime: listen, serve, and on SIGTERM/SIGINT shut down gracefully."""
    from .. import net

    rfd, wfd = os.pipe()
    os.set_blocking(wfd, False)
    old_wakeup = signal.set_wakeup_fd(wfd)
    old = {s: signal.signal(s, lambda *_: None) for s in SIGNALS}
    try:
        ln = net.listen("tcp", bind, reuse_port=reuse_port)
        srv = Server(
            handler=handler,
            read_header_timeout=opts.read_header_timeout,
            idle_timeout=opts.idle_timeout,
        )
        done = gort.chan()

        def serve() -> None:
            srv.serve(ln)
            done.close()

        gort.go(serve)
        role = f"worker {os.getpid()}" if reuse_port else f"pid {os.getpid()}"
        print(f"gort.http: {role} serving on http://{ln.addr}", flush=True)
        sig = 0
        while sig not in SIGNALS:  # the wakeup fd sees every handled signal (SIGURG too)
            got = gort.syscall(os.read, rfd, 1)  # the C handler writes the signal number
            sig = got[0] if got else signal.SIGTERM
        print(f"gort.http: {role} got signal {sig}; draining", flush=True)
        ctx, cancel = gort.with_timeout(gort.background(), opts.shutdown_timeout)
        err = srv.shutdown(ctx)
        cancel()
        done.recv()
        return 0 if err is None else 1
    finally:
        signal.set_wakeup_fd(old_wakeup)
        for s, h in old.items():
            signal.signal(s, h)
        os.close(rfd)
        os.close(wfd)


def run_single(handler: HandlerFunc, opts: argparse.Namespace, reuse_port: bool = False) -> int:
    result: int = gort.run(serve_main, handler, opts.bind, reuse_port, opts, procs=opts.procs)
    return result


class Supervisor:
    """The parent of --workers N: starts workers, restarts the dead, drains on a signal.

    Runs no gort runtime and does not import the app. Its own socket is bound with
    SO_REUSEPORT but never listens: it reserves the port (and resolves port 0)
    without taking a share of the connections."""

    def __init__(self, n: int, worker_argv: list[str], bind: str) -> None:
        self.n = n
        self.worker_argv = worker_argv  # the command line of a worker, less its bind
        host, port = _split_bind(bind)
        self.reserve = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.reserve.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.reserve.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self.reserve.bind((host, port))
        bound_host, bound_port = self.reserve.getsockname()[:2]
        self.bind = f"[{bound_host}]:{bound_port}" if ":" in bound_host else f"{host}:{bound_port}"
        self.children: dict[int, int] = {}  # pid -> worker slot
        self.stopping = False

    def spawn(self, slot: int) -> None:
        """Start a worker: a fresh interpreter running one runtime (exec, not a
        bare fork: a child of a fork would inherit this process's state)."""
        proc = subprocess.Popen([*self.worker_argv, "--worker-bind", self.bind])
        self.children[proc.pid] = slot

    def run(self) -> int:
        rfd, wfd = os.pipe()
        os.set_blocking(wfd, False)
        os.set_blocking(rfd, False)
        signal.set_wakeup_fd(wfd)
        for s in (*SIGNALS, signal.SIGCHLD):
            signal.signal(s, lambda *_: None)
        print(
            f"gort.http: supervisor {os.getpid()} on http://{self.bind}, {self.n} workers",
            flush=True,
        )
        for slot in range(self.n):
            self.spawn(slot)
        deadline = None
        import select

        while self.children:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([rfd], [], [], timeout)
            sigs = b""
            if ready:
                try:
                    sigs = os.read(rfd, 64)
                except BlockingIOError:
                    pass
            if not self.stopping and any(s in sigs for s in SIGNALS):
                self.stopping = True
                print("gort.http: supervisor draining workers", flush=True)
                for pid in self.children:
                    _kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + 60.0
            if deadline is not None and time.monotonic() >= deadline:
                for pid in self.children:
                    _kill(pid, signal.SIGKILL)
            self._reap()
        self.reserve.close()
        return 0

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            slot = self.children.pop(pid, None)
            if slot is None or self.stopping:
                continue
            print(f"gort.http: worker {pid} exited ({_describe(status)}); restarting", flush=True)
            time.sleep(0.1)  # a worker that dies at start must not spin the parent
            self.spawn(slot)


def _die_with_parent() -> None:
    """A worker gets SIGTERM (and drains) when its supervisor dies, even by
    SIGKILL: Linux's PR_SET_PDEATHSIG; elsewhere a worker may outlive it."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the supervisor died before the prctl
        sys.exit(0)


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"status {os.waitstatus_to_exitcode(status)}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m gort.http", description=__doc__.split("\n\n")[0])
    ap.add_argument("app", help="module:app, a WSGI application or a gort handler")
    ap.add_argument("--bind", default="127.0.0.1:8000", help="HOST:PORT (default 127.0.0.1:8000)")
    ap.add_argument("--workers", type=int, default=0, help="prefork N worker processes")
    ap.add_argument("--procs", type=int, default=None, help="GOMAXPROCS of each runtime")
    ap.add_argument(
        "--interface", choices=("auto", "wsgi", "handler"), default="auto", help="what app is"
    )
    ap.add_argument("--read-header-timeout", type=float, default=None)
    ap.add_argument("--idle-timeout", type=float, default=None)
    ap.add_argument("--shutdown-timeout", type=float, default=30.0)
    ap.add_argument(
        "--patch",
        action="store_true",
        help="gort.monkey.patch_all() before the app is imported (blocking libraries park)",
    )
    ap.add_argument("--worker-bind", default=None, help=argparse.SUPPRESS)
    opts = ap.parse_args(argv)
    if opts.workers > 0 and opts.worker_bind is None:
        args = sys.argv[1:] if argv is None else argv
        return Supervisor(opts.workers, [sys.executable, "-m", "gort.http", *args], opts.bind).run()
    if opts.patch:  # in the process that serves (a supervisor forwards the flag)
        from .. import monkey

        monkey.patch_all()
    app = load_app(opts.app)
    handler = make_handler(app, opts.interface, multiprocess=opts.workers > 0)
    if opts.worker_bind is not None:  # one of the supervisor's workers
        _die_with_parent()
        opts.bind = opts.worker_bind
        return run_single(handler, opts, reuse_port=True)
    return run_single(handler, opts)


if __name__ == "__main__":
    sys.exit(main())
