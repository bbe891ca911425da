"""Patched ``subprocess.Popen``: ``wait``, ``communicate`` (so ``run``,
``call``, ``check_output``...) park the goroutine instead of its M.

* ``wait`` parks on a pidfd (``os.pidfd_open``, Linux 5.3+), which becomes
  readable when the child exits; the zombie is then reaped by the original
  ``wait``, which no longer blocks. Without pidfds (other kernels, or a
  child someone else reaped) the original ``wait`` runs on a syscall
  helper M. A timeout is a poller deadline and ends in the standard
  library's ``TimeoutExpired``.
* ``communicate`` with a single pipe and no timeout, which the original
  serves with a blocking read or write of that pipe, takes the original's
  selector path instead (the one it uses with several pipes or a
  timeout): with ``selectors`` patched that parks on the run's poller.
  The result is the same: what the child wrote, decoded as asked.

Outside a goroutine both are the original's.
"""

from __future__ import annotations

import os as _os_mod
import subprocess as _subprocess_mod
from time import monotonic
from typing import Any

from ..runtime.netpoll import READ, level_ready, poll_wait_any
from ..runtime.syscall import syscall
from ._core import _originals, in_goroutine

_Popen = _subprocess_mod.Popen
_orig_wait = _Popen._wait  # type: ignore[attr-defined]
_orig_communicate = _Popen.communicate


def _wait(self: Any, timeout: float | None) -> int | None:
    if self.returncode is not None or not in_goroutine():
        return _orig_wait(self, timeout)  # type: ignore[no-any-return]
    try:
        pidfd = _os_mod.pidfd_open(self.pid)
    except (AttributeError, OSError):
        return syscall(_orig_wait, self, timeout)  # type: ignore[no-any-return]
    try:
        deadline = None if timeout is None else monotonic() + timeout
        pairs = ((pidfd, READ),)
        while not level_ready({pidfd: 1 << READ}):
            if not poll_wait_any(pairs, deadline, "subprocess.Popen.wait"):
                assert timeout is not None  # only a deadline ends the park so
                raise _subprocess_mod.TimeoutExpired(self.args, timeout)
    finally:
        _os_mod.close(pidfd)
    # Exited: the original reaps the zombie without blocking.
    return _orig_wait(self, None)  # type: ignore[no-any-return]


def _communicate(self: Any, input: Any = None, timeout: float | None = None) -> Any:
    pipes = (self.stdin, self.stdout, self.stderr).count(None)
    if timeout is not None or pipes != 2 or self._communication_started or not in_goroutine():
        return _orig_communicate(self, input, timeout)
    # One pipe, no timeout: the original would block on that pipe.
    try:
        out = self._communicate(input, None, None)
    finally:
        self._communication_started = True
    self.wait()
    return out


def patch_subprocess() -> bool:
    """Popen.wait and communicate park the goroutine (subprocess.run too)."""
    if "subprocess" in _originals:
        return False
    _originals["subprocess"] = {"Popen._wait": _orig_wait, "Popen.communicate": _orig_communicate}
    _Popen._wait = _wait  # type: ignore[attr-defined]
    _Popen.communicate = _communicate  # type: ignore[method-assign]
    return True
