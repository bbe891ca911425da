"""Running ``python -m gort.http`` in a subprocess for the server tests: start
it, learn its port from the line it prints, stop it with a signal."""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from gortproc import gort_env

TESTS = Path(__file__).resolve().parent


class ServerProc:
    def __init__(
        self, *args: str, ready: str = "serving on http://", env: dict[str, str] | None = None
    ) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gort.http", *args],
            cwd=TESTS,
            # GODEBUG=asyncpreemptoff=1: with asynchronous preemption a worker
            # sometimes hangs at start-up, goroutine 1 runnable while the only M
            # sleeps in netpoll_block (a runtime bug, reported; not gort.http's).
            env=gort_env({"GODEBUG": "asyncpreemptoff=1", **(env or {})}),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._pump, args=(self.proc.stdout, True), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.proc.stderr, False), daemon=True).start()
        line = self.wait_line(ready)
        m = re.search(r"http://([\d.]+):(\d+)", line)
        assert m, line
        self.host, self.port = m.group(1), int(m.group(2))

    def _pump(self, f: object, out: bool) -> None:
        for line in f:  # type: ignore[attr-defined]
            if out:
                self.lines.put(line)
            else:
                self.stderr.append(line)

    def wait_line(self, needle: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        skipped = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"no line with {needle!r}; stdout since: {''.join(skipped)}"
                    f"stderr: {''.join(self.stderr)}"
                )
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if needle in line:
                return line
            skipped.append(line)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
