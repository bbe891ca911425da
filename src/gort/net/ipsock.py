"""Addresses: "host:port" parsing and Addr (net/ipsock.go, net.go Addr).

Errors name the address, as Go's AddrError does:
``address nonsense: missing port in address``.
"""

from __future__ import annotations

import socket
from typing import Any

NETWORKS = ("tcp", "tcp4", "tcp6", "udp", "udp4", "udp6", "unix", "unixgram")


class Addr:
    """A network endpoint: ``host``, ``port``; ``str()`` is Go's form,
    ``127.0.0.1:8080``, ``[::1]:8080``, or a unix socket's path."""

    __slots__ = ("host", "network", "port")

    def __init__(self, network: str, host: str, port: int = 0) -> None:
        self.network = network
        self.host = host
        self.port = port

    def __str__(self) -> str:
        if self.network.startswith("unix"):
            return self.host
        return join_host_port(self.host, self.port)

    def __repr__(self) -> str:
        return f"Addr({self.network!r}, {str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Addr):
            return NotImplemented
        return (self.network, self.host, self.port) == (other.network, other.host, other.port)

    def __hash__(self) -> int:
        return hash((self.network, self.host, self.port))

    def sockaddr(self) -> Any:
        """The address as the socket module takes it."""
        if self.network.startswith("unix"):
            return self.host
        return (self.host, self.port)


def from_sockaddr(network: str, sa: Any) -> Addr:
    if isinstance(sa, tuple):
        return Addr(network, sa[0], sa[1])
    if isinstance(sa, bytes):  # an abstract unix address
        sa = sa.decode("utf-8", "surrogateescape")
    return Addr(network, sa or "", 0)


def join_host_port(host: str, port: int | str) -> str:
    """net.JoinHostPort: IPv6 hosts are bracketed."""
    if ":" in host:
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def split_host_port(address: str) -> tuple[str, str]:
    """net.SplitHostPort: ``host:port``, ``[host]:port``; ValueError naming address."""
    if not isinstance(address, str):
        raise TypeError(f"address must be a str, not {type(address).__name__}")
    i = address.rfind(":")
    if i < 0:
        raise _addr_error(address, "missing port in address")
    if address.startswith("["):
        end = address.find("]")
        if end < 0:
            raise _addr_error(address, "missing ']' in address")
        if end + 1 != i:
            raise _addr_error(
                address,
                "missing port in address"
                if end + 1 == len(address)
                else "unexpected ']' in address",
            )
        host = address[1:end]
    else:
        host = address[:i]
        if ":" in host:
            raise _addr_error(address, "too many colons in address")
        if "[" in host or "]" in host:
            raise _addr_error(address, "unexpected '[' in address")
    return host, address[i + 1 :]


def parse_port(address: str, network: str, port: str) -> int:
    """A port number or service name (Go's LookupPort); ValueError naming address."""
    if port.isdigit():
        n = int(port)
        if n <= 0xFFFF:
            return n
        raise _addr_error(address, "invalid port")
    if not port:
        return 0
    try:
        proto = "udp" if network.startswith("udp") else "tcp"
        return socket.getservbyname(port, proto)
    except OSError:
        raise _addr_error(address, "unknown port") from None


def _addr_error(address: str, why: str) -> ValueError:
    return ValueError(f"address {address}: {why}")


def check_network(network: str) -> str:
    if network not in NETWORKS:
        raise ValueError(f"unknown network {network}")
    return network


def wanted_family(network: str) -> int:
    """The address family a network name fixes (tcp4, udp6...), else AF_UNSPEC."""
    if network.endswith("4"):
        return socket.AF_INET
    if network.endswith("6"):
        return socket.AF_INET6
    return socket.AF_UNSPEC


def parse_ip(host: str) -> int | None:
    """The family of an IP literal, or None for a name."""
    try:
        socket.inet_pton(socket.AF_INET, host)
        return socket.AF_INET
    except OSError:
        pass
    try:
        socket.inet_pton(socket.AF_INET6, host.split("%", 1)[0])
        return socket.AF_INET6
    except OSError:
        return None
