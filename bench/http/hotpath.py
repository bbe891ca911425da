"""The per-request cost of gort.http without a network: one connection's loop
parsing N keep-alive GETs (one per read, as wrk sends them) and answering each
through the ResponseWriter, over an in-memory connection.

    PYTHONPATH=src python bench/http/hotpath.py [N] [--profile]
"""

from __future__ import annotations

import sys
import time
from collections import deque

import gort.http as http
from gort.http.server import _Conn

REQ = b"GET / HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: wrk\r\n\r\n"


class MemConn:
    remote_addr = "127.0.0.1:5555"

    def __init__(self, n: int) -> None:
        self.chunks = deque([REQ] * n)
        self.nbytes = 0

    def read(self, n: int) -> bytes:
        return self.chunks.popleft() if self.chunks else b""

    def write(self, b: bytes) -> None:
        self.nbytes += len(b)

    def close(self) -> None:
        pass


def hello(w: http.ResponseWriter, r: http.Request) -> None:
    w.header()["Content-Type"] = "text/plain"
    w.write(b"Hello, World!")


def run(n: int) -> float:
    srv = http.Server(handler=hello)
    conn = MemConn(n)
    t = time.perf_counter()
    _Conn(srv, conn).serve()
    return (time.perf_counter() - t) / n


def main() -> None:
    n = int(next((a for a in sys.argv[1:] if a.isdigit()), "50000"))
    if "--profile" in sys.argv:
        import cProfile
        import pstats

        cProfile.run("run(n)", "/tmp/gort_http_hotpath.prof")
        pstats.Stats("/tmp/gort_http_hotpath.prof").sort_stats("tottime").print_stats(15)
        return
    best = min(run(n) for _ in range(3))
    print(f"gort.http hot path: {best * 1e6:.2f} us/request (best of 3, {n:,} requests)")


if __name__ == "__main__":
    main()
