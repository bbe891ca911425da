"""An in-memory connection for driving gort.http's connection loop without a
network: reads return scripted chunks, writes are collected, and the
responses are parsed back with the standard library's http.client."""

from __future__ import annotations

import http.client
import io
from collections import deque
from collections.abc import Iterable
from typing import Any

from gort.http.server import Server, _Conn


class FakeConn:
    remote_addr = "127.0.0.1:5555"

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self.chunks = deque(chunks)
        self.out = bytearray()
        self.closed = False
        self.writes = 0
        self.read_deadlines: list[float | None] = []

    def read(self, n: int) -> bytes:
        if not self.chunks:
            return b""
        c = self.chunks.popleft()
        if len(c) > n:
            self.chunks.appendleft(c[n:])
            c = c[:n]
        return c

    def write(self, b: bytes) -> None:
        if self.closed:
            raise OSError("use of closed network connection")
        self.writes += 1
        self.out += b

    def close(self) -> None:
        self.closed = True

    def close_write(self) -> None:
        pass

    def set_read_deadline(self, t: float | None) -> None:
        self.read_deadlines.append(t)

    def set_write_deadline(self, t: float | None) -> None:
        pass


def serve(handler: Any, *chunks: bytes, **server_kw: Any) -> FakeConn:
    """Serve one connection that sends chunks then EOF; return it (out, closed)."""
    conn = FakeConn(chunks)
    srv = Server(handler=handler, **server_kw)
    c = _Conn(srv, conn)
    srv._conns.add(c)
    c.serve()
    return conn


class _Unclosable(io.BytesIO):
    def close(self) -> None:  # HTTPResponse closes its file after each body
        pass


class _Sock:
    def __init__(self, data: bytes) -> None:
        self.f = _Unclosable(data)

    def makefile(self, mode: str) -> io.BytesIO:
        return self.f


def responses(data: bytes, methods: Iterable[str] = ()) -> list[tuple[int, dict[str, str], bytes]]:
    """Every response in data: (status, headers with lower-case names, body)."""
    sock = _Sock(data)
    out = []
    methods = list(methods)
    i = 0
    while sock.f.tell() < len(data):
        method = methods[i] if i < len(methods) else "GET"
        r = http.client.HTTPResponse(sock, method=method)  # type: ignore[arg-type]
        r.begin()
        body = r.read()
        out.append((r.status, {k.lower(): v for k, v in r.getheaders()}, body))
        i += 1
    return out
