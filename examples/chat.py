"""A chat server: a goroutine per client and a hub goroutine, talking over channels.

The hub owns the set of clients, so nothing is locked: clients join, leave
and post by sending to the hub's channels, and the hub sends every message
to every client's outgoing channel. Each client has a reader goroutine (its
lines go to the hub) and a writer goroutine (its outgoing channel goes to
the socket), so a slow client delays only itself: its buffered channel fills
and the hub drops its messages rather than block the room.

Run it with ``python -m gort examples/chat.py``: three scripted users chat.
"""

from __future__ import annotations

import gort

OUTBOX = 64  # messages buffered per client before the hub drops them


class Hub:
    def __init__(self) -> None:
        self.join = gort.chan()
        self.leave = gort.chan()
        self.post = gort.chan()

    def run(self) -> None:
        """The one goroutine that knows who is in the room."""
        clients: set[gort.Chan] = set()
        while True:
            i, v = gort.select(self.join.recv, self.leave.recv, self.post.recv2)
            if i == 0:
                clients.add(v)
            elif i == 1:
                clients.discard(v)
                v.close()  # ends that client's writer
            else:
                msg, ok = v
                if not ok:
                    return
                for out in clients:
                    gort.select((out.send, msg), gort.default)  # never block the room


def writer(conn: gort.net.Conn, out: gort.Chan) -> None:
    for msg in out:
        conn.write(msg.encode() + b"\n")
    conn.close_write()


def session(hub: Hub, conn: gort.net.Conn) -> None:
    """A client: the first line is its name, every later line a message."""
    out = gort.chan(OUTBOX)
    gort.go(writer, conn, out)
    buf = b""
    name = None
    try:
        while data := conn.read(4096):
            buf += data
            *lines, buf = buf.split(b"\n")
            for line in lines:
                if name is None:
                    name = line.decode()
                    hub.join.send(out)
                    hub.post.send(f"* {name} joined")
                else:
                    hub.post.send(f"{name}: {line.decode()}")
    finally:
        if name is not None:
            hub.leave.send(out)
        else:
            out.close()


def serve(hub: Hub, ln: gort.net.Listener) -> None:
    while True:
        try:
            gort.go(session, hub, ln.accept())
        except gort.net.ErrClosed:
            return


class User:
    """A scripted chat user over its own conn."""

    def __init__(self, addr: str, name: str) -> None:
        self.name = name
        self.conn = gort.net.dial("tcp", addr)
        self.conn.set_deadline(gort.now() + 30)
        self.heard: list[str] = []
        self._buf = b""
        self.say(name)

    def say(self, line: str) -> None:
        self.conn.write(line.encode() + b"\n")

    def hear(self, n: int) -> None:
        """Read until n lines in all have been heard."""
        while len(self.heard) < n:
            data = self.conn.read(4096)
            assert data, "the server hung up"
            *lines, self._buf = (self._buf + data).split(b"\n")
            self.heard.extend(x.decode() for x in lines)


def main() -> None:
    hub = Hub()
    gort.go(hub.run)
    ln = gort.net.listen("tcp", "127.0.0.1:0")
    gort.go(serve, hub, ln)
    users: list[User] = []
    for name in ("alice", "bob", "carol"):
        # One at a time: each user hears its own join and every later one.
        users.append(User(str(ln.addr), name))
        for u in users:
            u.hear(len(u.heard) + 1)
    for u in users:
        u.say(f"hello from {u.name}")
    done = gort.chan()

    def listen(u: User) -> None:
        u.hear(len(u.heard) + len(users))
        done.send(u)

    for u in users:
        gort.go(listen, u)
    for _ in users:
        done.recv()
    for u in users:
        joins = sum(x.startswith("* ") for x in u.heard)
        talk = sorted(x for x in u.heard if not x.startswith("* "))
        print(f"{u.name} heard {joins} joins and: {'; '.join(talk)}")
        u.conn.close()
    ln.close()
    hub.post.close()


if __name__ == "__main__":
    gort.run(main)
