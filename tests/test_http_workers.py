"""python -m gort.http --workers N: N processes serve one port, a killed worker is
replaced, SIGTERM drains every worker gracefully."""

from __future__ import annotations

import http.client
import os
import re
import signal
import threading
import time

import pytest

from httpproc import ServerProc

pytestmark = pytest.mark.timeout(120)


def _pid(s: ServerProc) -> int:
    c = http.client.HTTPConnection(s.host, s.port, timeout=10)
    try:
        c.request("GET", "/pid", headers={"Connection": "close"})
        return int(c.getresponse().read())
    finally:
        c.close()


def _pids_until(s: ServerProc, want: set[int], limit: float = 30.0) -> set[int]:
    seen: set[int] = set()
    deadline = time.monotonic() + limit
    while not want <= seen:
        assert time.monotonic() < deadline, f"saw {seen}, want {want}"
        seen.add(_pid(s))
    return seen


def _workers(s: ServerProc, n: int) -> set[int]:
    pids = set()
    for _ in range(n):
        line = s.wait_line("serving on")
        m = re.search(r"worker (\d+)", line)
        assert m, line
        pids.add(int(m.group(1)))
    return pids


def test_workers_serve_restart_and_drain() -> None:
    s = ServerProc("--workers", "2", "--bind", "127.0.0.1:0", "http_app:mux", ready="supervisor")
    try:
        pids = _workers(s, 2)
        assert len(pids) == 2 and s.proc.pid not in pids
        _pids_until(s, pids)  # the kernel spreads connections over both workers

        victim = min(pids)
        os.kill(victim, signal.SIGKILL)
        s.wait_line(f"worker {victim} exited (signal 9); restarting")
        [new] = _workers(s, 1)
        assert new not in pids
        _pids_until(s, {max(pids), new})

        # SIGTERM with a request in flight: it completes, then everything exits 0
        result: list[object] = []

        def slow() -> None:
            c = http.client.HTTPConnection(s.host, s.port, timeout=30)
            c.request("GET", "/slow?s=1.0")
            r = c.getresponse()
            result.append((r.status, r.read()))

        t = threading.Thread(target=slow)
        t.start()
        s.wait_line("slow request started")
        s.proc.send_signal(signal.SIGTERM)
        assert s.proc.wait(60) == 0, "".join(s.stderr)
        t.join(30)
        assert result == [(200, b"done")]
        for pid in (max(pids), new):
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)  # every worker is gone with the supervisor
    finally:
        if s.proc.poll() is None:
            s.stop(signal.SIGKILL)
