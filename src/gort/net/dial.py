"""dial and listen (net/dial.go: Dialer.DialContext, dialSerial,
partialDeadline; sock_posix.go).

``dial`` resolves the host (on a syscall helper), then tries each address
in order, as Go's dialSerial does: the time left is split evenly over the
addresses still to try, but no attempt gets less than 2 s unless less is
left, so one black-holed address cannot eat the whole timeout. The first
error is the one raised when every address fails.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from time import monotonic
from typing import Any

from ..internal.poll import FD, Timeout
from ..runtime.proc import getg
from .ipsock import check_network, parse_ip, parse_port, split_host_port, wanted_family
from .lookup import resolve
from .net import Conn, Listener, PacketConn, set_tcp_defaults

SANE_MINIMUM_DIAL = 2.0  # dial.go partialDeadline: saneMinimum


def _somaxconn() -> int:
    """The kernel's listen backlog limit, as Go's maxListenerBacklog reads it."""
    try:
        with open("/proc/sys/net/core/somaxconn") as f:
            n = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return socket.SOMAXCONN
    return min(n, (1 << 16) - 1) if n > 0 else socket.SOMAXCONN


_BACKLOG = _somaxconn()


def partial_deadline(now: float, deadline: float, remaining: int) -> float:
    """The deadline for one of ``remaining`` addresses (0: none)."""
    if not deadline:
        return 0.0
    left = deadline - now
    if left <= 0:
        raise Timeout()
    timeout = left / remaining
    if timeout < SANE_MINIMUM_DIAL:
        timeout = min(left, SANE_MINIMUM_DIAL)
    return now + timeout


def _addrs(network: str, address: str, sotype: int, passive: bool) -> list[tuple[int, Any]]:
    """(family, sockaddr) candidates for a "host:port" address, in order."""
    host, portstr = split_host_port(address)
    port = parse_port(address, network, portstr)
    want = wanted_family(network)
    if not host:
        v6 = want == socket.AF_INET6
        if passive:
            return (
                [(socket.AF_INET6, ("::", port))] if v6 else [(socket.AF_INET, ("0.0.0.0", port))]
            )
        # dial ":80" means the local system (Go dials the loopback address)
        host = "::1" if v6 else "127.0.0.1"
    fam = parse_ip(host)
    if fam is not None:
        if want not in (socket.AF_UNSPEC, fam):
            raise ValueError(f"address {address}: no suitable address")
        return [(fam, (host, port))]
    addrs = resolve(host, port, want, sotype)
    if passive:  # listen on one address, IPv4 first (Go's favoriteAddrFamily)
        addrs.sort(key=lambda a: a[0] != socket.AF_INET)
        return addrs[:1]
    return addrs


def resolve_one(network: str, address: str) -> Any:
    return _addrs(network, address, socket.SOCK_DGRAM, False)[0][1]


def dial(network: str, address: str, timeout: float | None = None, ctx: Any = None) -> Conn:
    """Connect to address on network (tcp, tcp4, tcp6, unix, udp...).

    A dialled udp or unixgram Conn reads and writes datagrams of its one peer.

    timeout bounds the whole dial (a lookup that outlasts it fails the dial
    once it returns); an expired one raises Timeout. ctx (Go's DialContext):
    its deadline bounds the dial too, and cancelling it aborts a dial in
    progress with ``gort.Canceled("operation was canceled")``.
    """
    getg("gort.net.dial")
    check_network(network)
    if timeout is not None and timeout <= 0:
        raise Timeout()
    deadline = monotonic() + timeout if timeout is not None else 0.0
    if ctx is not None:
        _check_ctx(ctx)
        d = ctx.deadline()
        if d is not None and (not deadline or d < deadline):
            deadline = d
    if network.startswith("unix"):
        sotype = socket.SOCK_STREAM if network == "unix" else socket.SOCK_DGRAM
        return _dial_one(network, socket.AF_UNIX, sotype, address, deadline, ctx)
    sotype = socket.SOCK_DGRAM if network.startswith("udp") else socket.SOCK_STREAM
    addrs = _addrs(network, address, sotype, False)
    first: BaseException | None = None
    for i, (fam, sa) in enumerate(addrs):
        if ctx is not None:
            _check_ctx(ctx)
        part = partial_deadline(monotonic(), deadline, len(addrs) - i)
        try:
            return _dial_one(network, fam, sotype, sa, part, ctx)
        except OSError as e:
            if first is None:
                first = e
    assert first is not None
    raise first


def _ctx_error(ctx: Any) -> BaseException | None:
    """The error a done ctx makes a dial fail with (net's mapErr)."""
    err = ctx.err()
    if err is None:
        return None
    from ..context import Canceled

    if err is Canceled:
        return Canceled("operation was canceled")
    return Timeout()


def _check_ctx(ctx: Any) -> None:
    err = _ctx_error(ctx)
    if err is not None:
        raise err


def _dial_one(
    network: str, fam: int, sotype: int, sa: Any, deadline: float, ctx: Any = None
) -> Conn:
    sock = socket.socket(fam, sotype)
    try:
        fd = FD(sock)
    except BaseException:
        sock.close()
        raise
    stop = None
    try:
        if deadline:
            fd.set_write_deadline(deadline)
        if ctx is not None:
            # Go's connect: a goroutine waits for ctx and interrupts the
            # connect by moving the write deadline into the past.
            from ..context import context_after_func

            stop = context_after_func(ctx, lambda: fd.set_write_deadline(-1.0))
        try:
            fd.connect(sa)
        except Timeout:
            if ctx is not None:
                _check_ctx(ctx)
            raise
        if stop is not None and not stop():
            _check_ctx(ctx)  # ctx ended the dial just as it completed
        stop = None
        if deadline:
            fd.set_write_deadline(None)
        if sotype == socket.SOCK_STREAM and fam != socket.AF_UNIX:
            set_tcp_defaults(sock)
        return Conn(fd, network)
    except BaseException:
        if stop is not None:
            stop()
        fd.close()
        raise


def listen(
    network: str, address: str, backlog: int | None = None, reuse_port: bool = False
) -> Listener:
    """Listen on address: tcp, tcp4, tcp6 ("host:port", ":0") or unix (a path)."""
    getg("gort.net.listen")
    if check_network(network) not in ("tcp", "tcp4", "tcp6", "unix"):
        raise ValueError(f"listen: unexpected network {network} (use listen_packet)")
    n = _BACKLOG if backlog is None else backlog

    def setup(sock: socket.socket) -> None:
        if network != "unix":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)

    fd = _bound(network, address, socket.SOCK_STREAM, setup, n)
    return Listener(fd, network, unlink=address if network == "unix" else None)


def listen_packet(network: str, address: str) -> PacketConn:
    """A datagram socket bound to address: udp, udp4, udp6 or unixgram."""
    getg("gort.net.listen_packet")
    if check_network(network) not in ("udp", "udp4", "udp6", "unixgram"):
        raise ValueError(f"listen_packet: unexpected network {network}")
    return PacketConn(_bound(network, address, socket.SOCK_DGRAM, None, None), network)


def _bound(
    network: str,
    address: str,
    sotype: int,
    setup: Callable[[socket.socket], None] | None,
    backlog: int | None,
) -> FD:
    """A socket bound to address (listening when backlog is given), as an FD."""
    fam: int
    sa: Any
    if network.startswith("unix"):
        fam, sa = socket.AF_UNIX, address
    else:
        fam, sa = _addrs(network, address, sotype, True)[0]
    sock = socket.socket(fam, sotype)
    try:
        if setup is not None:
            setup(sock)
        sock.bind(sa)
        if backlog is not None:
            sock.listen(backlog)
        return FD(sock)
    except BaseException:
        sock.close()
        raise
