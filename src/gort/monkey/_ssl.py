"""Patched ``ssl``: TLS sockets over the patched socket, parking on
WANT_READ / WANT_WRITE.

``ssl.SSLSocket`` subclasses the socket class that existed when ``ssl`` was
imported, which is usually the original (gort itself imports ssl, and so
does most of the ecosystem). Rather than re-import ssl, ``patch_ssl``
makes ``SSLSocket``, a subclass of both that class and gort.monkey's
socket, and points ``SSLContext.sslsocket_class`` at it: ``wrap_socket``
(and so ``http.client``, ``urllib3``, ``smtplib.SMTP_SSL``...) builds it,
``isinstance(s, ssl.SSLSocket)`` holds, and its unwrapped calls (connect,
accept, plain recv before the handshake) go through the patched socket.
``ssl.SSLSocket`` itself stays the original: its ``_create`` names it to
skip its own constructor.

While the descriptor is registered with the poller the C socket is
non-blocking, so the C TLS calls report WANT_READ / WANT_WRITE instead of
blocking; each call then parks until the descriptor is ready and retries.
The socket's timeout is a deadline for the whole call and ends in the
standard library's ``TimeoutError("The read operation timed out")`` (write,
handshake likewise). Outside a goroutine the socket is back in its own mode
and the original calls run.
"""

from __future__ import annotations

import ssl as _ssl_mod
from collections.abc import Callable
from typing import Any

from ..runtime.netpoll import READ, WRITE
from ._core import _live_instances, _originals, _warn_late
from ._socket import socket

_orig_SSLSocket = _ssl_mod.SSLSocket


class SSLSocket(_orig_SSLSocket, socket):
    """ssl.SSLSocket whose TLS calls park the goroutine (see the module)."""

    def _gort_tls(self, op: str, fn: Callable[..., Any], *args: Any) -> Any:
        pd = self._gort_park_pd()
        if pd is None:
            return fn(*args)
        deadline = self._gort_deadline()
        call = "ssl.SSLSocket." + op
        while True:
            try:
                return fn(*args)
            except _ssl_mod.SSLWantReadError:
                mode = READ
            except _ssl_mod.SSLWantWriteError:
                mode = WRITE
            try:
                self._gort_wait(pd, mode, call, deadline)
            except TimeoutError:
                raise TimeoutError(f"The {_OPS[op]} operation timed out") from None

    def read(self, len: int = 1024, buffer: Any = None) -> Any:
        return self._gort_tls("read", super().read, len, buffer)

    def write(self, data: Any) -> int:
        return self._gort_tls("write", super().write, data)  # type: ignore[no-any-return]

    def send(self, data: Any, flags: int = 0) -> int:
        return self._gort_tls("send", super().send, data, flags)  # type: ignore[no-any-return]

    def do_handshake(self, block: bool = False) -> None:
        self._gort_tls("do_handshake", super().do_handshake, block)

    def unwrap(self) -> Any:
        return self._gort_tls("unwrap", super().unwrap)

    def verify_client_post_handshake(self) -> None:
        self._gort_tls("verify_client_post_handshake", super().verify_client_post_handshake)


# The standard library's words for each operation's timeout.
_OPS = {
    "read": "read",
    "write": "write",
    "send": "write",
    "do_handshake": "handshake",
    "unwrap": "shutdown",
    "verify_client_post_handshake": "handshake",
}


def patch_ssl() -> bool:
    """SSLContext.wrap_socket builds TLS sockets that park the goroutine."""
    if "ssl" in _originals:
        return False
    _warn_late("ssl", lambda: _live_instances(_orig_SSLSocket))
    _originals["ssl"] = {"SSLContext.sslsocket_class": _ssl_mod.SSLContext.sslsocket_class}
    _ssl_mod.SSLContext.sslsocket_class = SSLSocket
    return True
