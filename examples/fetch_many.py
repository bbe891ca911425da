"""1,000 concurrent requests, each with a deadline: a goroutine per connection.

A local server answers each request after a delay the request asks for; one
request in a hundred asks for longer than the client's deadline and fails
with ``gort.net.Timeout`` (``i/o timeout``) while the others succeed. A
channel collects the outcomes. Straight-line code throughout: dial, write,
read, with ``set_deadline`` where asyncio would need ``wait_for``.

Run it with ``python -m gort examples/fetch_many.py [n]``.
"""

from __future__ import annotations

import sys

import gort

DEADLINE = 2.0  # seconds a client waits for its answer
SLOW = 5.0  # what the slow requests ask for: past the deadline


def answer(conn: gort.net.Conn) -> None:
    """Read "delay\\n", wait that long, answer "ok"."""
    with conn:
        req = b""
        while not req.endswith(b"\n"):
            data = conn.read(64)
            if not data:
                return
            req += data
        gort.sleep(float(req))
        try:
            conn.write(b"ok")
        except OSError:
            pass  # the client gave up and closed


def serve(ln: gort.net.Listener) -> None:
    while True:
        try:
            gort.go(answer, ln.accept())
        except gort.net.ErrClosed:
            return


def fetch(addr: str, delay: float, results: gort.Chan) -> None:
    try:
        with gort.net.dial("tcp", addr, timeout=DEADLINE) as conn:
            conn.set_deadline(gort.now() + DEADLINE)
            conn.write(f"{delay}\n".encode())
            results.send(conn.read(2).decode())
    except gort.net.Timeout as e:
        results.send(str(e))


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    ln = gort.net.listen("tcp", "127.0.0.1:0")
    gort.go(serve, ln)
    results = gort.chan(n)
    t0 = gort.now()
    for i in range(n):
        gort.go(fetch, str(ln.addr), SLOW if i % 100 == 99 else 0.01, results)
    outcomes: dict[str, int] = {}
    for _ in range(n):
        r = results.recv()
        outcomes[r] = outcomes.get(r, 0) + 1
    elapsed = gort.now() - t0
    ln.close()
    print(f"{n} requests: {outcomes.get('ok', 0)} ok, {outcomes.get('i/o timeout', 0)} timed out")
    assert elapsed < DEADLINE + 5, elapsed  # concurrent: about one deadline, not n of them


if __name__ == "__main__":
    gort.run(main)
