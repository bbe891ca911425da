"""The echo servers, one per system, each written idiomatically.

    python bench/net/servers.py SYSTEM PORT

Each reads up to 4 KiB and writes it back, a task/goroutine/greenlet per
connection (uvloop_proto: a Protocol, no task: the upper mark).
"""

from __future__ import annotations

import sys


def gort_server(port: int) -> None:
    import gort

    def handle(c: gort.net.Conn) -> None:
        with c:
            while True:
                with c.read_buffer(4096) as buf:  # pooled: no bytes object per read
                    if not len(buf):
                        return
                    c.write(buf.view)

    def main() -> None:
        ln = gort.net.listen("tcp", f"127.0.0.1:{port}")
        while True:
            gort.go(handle, ln.accept())

    gort.run(main)


def gevent_server(port: int) -> None:
    from gevent.server import StreamServer

    def handle(sock: object, addr: object) -> None:
        recv, send = sock.recv, sock.sendall  # type: ignore[attr-defined]
        while data := recv(4096):
            send(data)

    StreamServer(("127.0.0.1", port), handle, backlog=4096).serve_forever()


def asyncio_server(port: int, use_uvloop: bool = False) -> None:
    import asyncio

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(4096):
            writer.write(data)
            await writer.drain()
        writer.close()

    async def main() -> None:
        srv = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
        await srv.serve_forever()

    if use_uvloop:
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())


def uvloop_proto_server(port: int) -> None:
    import asyncio

    import uvloop

    class Echo(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            self.transport.write(data)  # type: ignore[attr-defined]

    async def main() -> None:
        loop = asyncio.get_running_loop()
        srv = await loop.create_server(Echo, "127.0.0.1", port, backlog=4096)
        await srv.serve_forever()

    uvloop.run(main())


def trio_server(port: int) -> None:
    import functools

    import trio

    async def handle(stream: trio.SocketStream) -> None:
        async for data in stream:
            await stream.send_all(data)

    trio.run(functools.partial(trio.serve_tcp, handle, port, host="127.0.0.1", backlog=4096))


SERVERS = {
    "gort": gort_server,
    "gevent": gevent_server,
    "asyncio": asyncio_server,
    "uvloop": lambda port: asyncio_server(port, use_uvloop=True),
    "uvloop_proto": uvloop_proto_server,
    "trio": trio_server,
}

if __name__ == "__main__":
    SERVERS[sys.argv[1]](int(sys.argv[2]))
