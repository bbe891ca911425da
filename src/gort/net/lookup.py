"""Name resolution (net/lookup.go): getaddrinfo on a syscall helper M, so
the goroutine waits while its P runs others (Go's cgo resolver path)."""

from __future__ import annotations

import socket

from ..runtime.syscall import syscall
from .ipsock import parse_ip


def lookup_host(host: str) -> list[str]:
    """The addresses of host, in the resolver's order, without duplicates."""
    if not isinstance(host, str) or not host:
        raise ValueError(f"lookup {host!r}: no such host")
    if parse_ip(host) is not None:
        return [host]
    return [sa[0] for _, sa in resolve(host, 0, socket.AF_UNSPEC, socket.SOCK_STREAM)]


def resolve(host: str, port: int, family: int, sotype: int) -> list[tuple[int, tuple[str, int]]]:
    """(family, (ip, port)) for host, resolver order, duplicates dropped."""
    try:
        infos = syscall(socket.getaddrinfo, host, port, family, sotype)
    except socket.gaierror as e:
        raise socket.gaierror(e.errno, f"lookup {host}: {e.strerror}") from None
    seen: set[str] = set()
    out: list[tuple[int, tuple[str, int]]] = []
    for fam, _, _, _, sa in infos:
        if fam not in (socket.AF_INET, socket.AF_INET6) or sa[0] in seen:
            continue
        seen.add(sa[0])
        out.append((fam, (sa[0], sa[1])))
    if not out:
        raise socket.gaierror(socket.EAI_NONAME, f"lookup {host}: no such host")
    return out
