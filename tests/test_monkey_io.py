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
