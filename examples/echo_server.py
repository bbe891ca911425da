"""An echo server: one goroutine per connection, in straight-line code.

The accept loop backs off when the process runs out of descriptors (EMFILE),
as Go's net/http server does: 5 ms, doubling up to 1 s, reset by the next
successful accept; connections wait in the backlog meanwhile instead of the
loop spinning or the server dying.

Run it with ``python -m gort examples/echo_server.py [clients] [rounds]``: it
serves on a loopback port and checks itself with that many client goroutines.
"""

from __future__ import annotations

import errno
import sys

import gort

BACKOFF_MIN = 0.005  # net/http: tempDelay starts at 5 ms ...
BACKOFF_MAX = 1.0  # ... and doubles up to 1 s


def handle(conn: gort.net.Conn) -> None:
    """Echo until the client closes. Each read lands in a buffer from gort.alloc
    (no bytes object per read), given back as soon as it is echoed."""
    with conn:
        while True:
            with conn.read_buffer(4096) as buf:
                if not len(buf):
                    return  # EOF
                conn.write(buf.view)


def serve(ln: gort.net.Listener) -> None:
    """Accept until ln is closed; back off on descriptor exhaustion."""
    delay = 0.0
    while True:
        try:
            conn = ln.accept()
        except gort.net.ErrClosed:
            return
        except OSError as e:
            if e.errno not in (errno.EMFILE, errno.ENFILE):
                raise
            delay = min(delay * 2, BACKOFF_MAX) if delay else BACKOFF_MIN
            print(f"accept error: {e.strerror}; retrying in {delay * 1000:.0f}ms", file=sys.stderr)
            gort.sleep(delay)
            continue
        delay = 0.0
        gort.go(handle, conn)


def client(addr: str, rounds: int, done: gort.Chan) -> None:
    with gort.net.dial("tcp", addr, timeout=5) as conn:
        conn.set_deadline(gort.now() + 30)
        for i in range(rounds):
            msg = f"message {i} from {conn.local_addr}\n".encode()
            conn.write(msg)
            got = b""
            while len(got) < len(msg):
                got += conn.read(len(msg) - len(got))
            assert got == msg, (got, msg)
    done.send(rounds)


def main() -> None:
    clients = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    ln = gort.net.listen("tcp", "127.0.0.1:0")
    gort.go(serve, ln)
    done = gort.chan()
    for _ in range(clients):
        gort.go(client, str(ln.addr), rounds, done)
    total = sum(done.recv() for _ in range(clients))
    ln.close()
    print(f"echoed {total} messages over {clients} connections")


if __name__ == "__main__":
    gort.run(main)
