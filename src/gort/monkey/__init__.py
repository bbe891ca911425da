"""Running unmodified blocking libraries on goroutines (gevent's monkey
patching, on gort's poller).

``patch_all()`` replaces the standard library's blocking entry points with
versions that park the calling goroutine instead of blocking its M:

* ``socket.socket`` becomes a subclass whose blocking calls retry the
  non-blocking syscall and, on EAGAIN, park in ``IO wait`` on the run's
  poller (the same poll descriptors gort.net uses: never a second I/O
  loop). A socket timeout becomes a poller deadline for the call; it
  expires as the standard library's ``TimeoutError("timed out")``.
* name resolution (``getaddrinfo``, ``gethostbyname``...) runs on a
  syscall helper M, as gort.net's resolver does.
* ``time.sleep`` is ``gort.sleep``; ``select.select``, ``select.poll`` and
  ``select.epoll`` objects and the ``selectors`` classes park on the run's
  poller (a multi-descriptor park: netpoll's ``poll_wait_any``).
* ``threading``/``_thread`` (_threading.py): a Thread started in a goroutine
  is a goroutine; locks park goroutines (CPython's Condition, Event,
  Semaphore, Barrier, RLock and queue.Queue are built on them); get_ident,
  current_thread and local are per goroutine. ``queue.SimpleQueue`` and
  ThreadPoolExecutor's worker loop follow (_queue.py, _futures.py).
* ``ssl``: ``SSLContext.wrap_socket`` builds ``SSLSocket`` (a subclass of
  ssl's class and the patched socket) whose TLS calls park on WANT_READ /
  WANT_WRITE.
* ``os.read``/``os.write`` park on a blocking descriptor that is not ready;
  ``subprocess.Popen.wait`` parks on a pidfd and ``communicate`` on the
  poller (``run`` and friends with them).

Invariant: outside a running gort goroutine (before or after ``gort.run``,
on a plain thread) every patched object behaves exactly as the original:
the socket is put back into the blocking mode its timeout says and the
original call runs. Inside a goroutine the descriptor is kept
non-blocking and registered with the run's poller; the mode is switched
only when a socket crosses between the two worlds.

Sockets made before patching stay instances of the original class and keep
working (unpatched: they block the M they run on); ``patch_all`` warns when
it finds any, naming where the module was first imported.
"""

from __future__ import annotations

from collections.abc import Callable

from ._core import MonkeyWarning, _originals, in_goroutine, offload
from ._futures import patch_futures
from ._os import patch_os
from ._psycopg import patch_psycopg
from ._queue import patch_queue
from ._select import patch_select, patch_selectors
from ._socket import patch_socket, socket
from ._ssl import SSLSocket, patch_ssl
from ._subprocess import patch_subprocess
from ._threading import patch_thread
from ._time import patch_time

__all__ = [
    "MonkeyWarning",
    "SSLSocket",
    "in_goroutine",
    "is_patched",
    "offload",
    "patch_all",
    "patch_futures",
    "patch_os",
    "patch_psycopg",
    "patch_queue",
    "patch_select",
    "patch_selectors",
    "patch_socket",
    "patch_ssl",
    "patch_subprocess",
    "patch_thread",
    "patch_time",
    "socket",
]

# Every patcher, in the order patch_all applies them. Each returns False
# when its module was already patched (patching twice is a no-op).
_PATCHERS: dict[str, Callable[[], bool]] = {
    "socket": patch_socket,
    "ssl": patch_ssl,
    "time": patch_time,
    "select": patch_select,
    "selectors": patch_selectors,
    "os": patch_os,
    "subprocess": patch_subprocess,
    "psycopg": patch_psycopg,
    "threading": patch_thread,
    "queue": patch_queue,
    "concurrent.futures": patch_futures,
}


def patch_all() -> None:
    """Patch every module gort knows how to patch. Patching twice is a no-op."""
    for patch in _PATCHERS.values():
        patch()


def is_patched(name: str) -> bool:
    """Whether the standard library module ``name`` is patched."""
    if not isinstance(name, str):
        raise TypeError(f"is_patched: module name must be str, not {type(name).__name__}")
    return name in _originals
