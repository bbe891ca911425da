"""Preemption (mirrors runtime/preempt.go and Go 1.14's signal scheme).

sysmon marks a goroutine that has held its P for more than
``FORCE_PREEMPT_NS`` (10 ms). Then:

* On M0, the main thread, the goroutine is preempted asynchronously: sysmon
  sends SIGURG (Go's choice: a signal nobody else uses) and the handler,
  which CPython runs between two bytecodes of the main thread, yields the
  goroutine as ``gosched`` would.
* Everywhere, the next parking runtime call honours the mark (synchronous
  preemption): the G gives up the time slice it shares with ``runnext``.

Async safe points. Library code that holds a ``threading`` lock assumes
nothing else runs on its thread until it lets go; a second goroutine on the
same thread would break that (an RLock would even let it in). So the
handler yields only when every frame of the goroutine is user code: not
gort, not the standard library, not site-packages. Otherwise the mark stays
and sysmon signals again on a later round. ``GODEBUG=asyncpreemptoff=1``
turns the signal off.

Signals reach Python handlers only on the main thread, so Ms other than M0
get the synchronous kind only; a loop there that never calls the runtime is
reported by sysmon's blocking detector instead.
"""

from __future__ import annotations

import dis
import os
import signal
import sysconfig
import threading
from types import CodeType, FrameType
from typing import Any

from greenlet import GreenletExit, getcurrent

from . import proc as _proc
from .proc import _gbody
from .runtime2 import P, sched

SIGPREEMPT = signal.SIGURG


def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    gort_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    roots.add(gort_dir)
    return tuple(sorted(os.path.join(os.path.realpath(r), "") for r in roots))


_LIBRARY_ROOTS = _library_roots()
_safe_cache: dict[str, bool] = {}


def is_user_file(filename: str) -> bool:
    """True for code that is neither gort, the stdlib nor an installed package."""
    safe = _safe_cache.get(filename)
    if safe is None:
        if filename.startswith("<"):
            safe = filename not in ("<frozen importlib._bootstrap>",)
            safe = safe and not filename.startswith("<frozen")
        else:
            real = os.path.realpath(filename)
            safe = not real.startswith(_LIBRARY_ROOTS)
        _safe_cache[filename] = safe
    return safe


# Runtime frames that may sit between _gbody and user code because they
# only call the user's function and hold nothing (runtime main).
_trampolines: set[CodeType] = set()


def add_trampoline(code: CodeType) -> None:
    _trampolines.add(code)


_CALL_OPS = frozenset(
    dis.opmap[name] for name in ("CALL", "PRECALL", "CALL_FUNCTION_EX") if name in dis.opmap
)


def async_safe(frame: FrameType | None) -> bool:
    """Is the interrupted goroutine at an async safe point?

    Every frame must be user code, and the innermost one must not be inside
    a call: a signal that arrives during a C function (``time.sleep``, a
    socket call, ``lock.acquire``) runs its handler from within that
    function, whose state a switch would freeze mid-way. The walk stops at
    the goroutine's bottom frame, gort's ``_gbody``.
    """
    if frame is None or frame.f_code.co_code[frame.f_lasti] in _CALL_OPS:
        return False
    bottom = _gbody.__code__
    while frame is not None:
        code = frame.f_code
        if code is bottom:
            return True
        if code not in _trampolines and not is_user_file(code.co_filename):
            return False
        frame = frame.f_back
    return False


def _on_sigurg(signum: int, frame: FrameType | None) -> None:
    """The preemption signal's handler, on the main thread."""
    gp = getattr(getcurrent(), "gp", None)
    if gp is None or gp.glet is None:
        return  # on g0 or outside the runtime: nothing to preempt
    if sched.exiting:
        raise GreenletExit  # the program is over: unwind this goroutine
    pp: P | None = gp.p
    if pp is None or not pp.preempt_async:
        return
    if not async_safe(frame):
        return  # sysmon signals again later
    pp.preempt_async = False
    pp.preempt = True
    _proc.goyield(gp, pp)  # looked up at the call: tests count the yields


class Preempter:
    """Installs the SIGURG handler for one run and sends the signal."""

    def __init__(self) -> None:
        self.old: Any = None
        self.installed = False
        self.main_ident = threading.main_thread().ident or 0

    def install(self) -> None:
        # Installed even with asyncpreemptoff=1: the same signal ends the
        # goroutine M0 runs when another M ends the program.
        if threading.current_thread() is not threading.main_thread():
            return  # handlers can only be set from the main thread
        self.old = signal.signal(SIGPREEMPT, _on_sigurg)
        self.installed = True

    def uninstall(self) -> None:
        if self.installed:
            signal.signal(SIGPREEMPT, self.old if self.old is not None else signal.SIG_DFL)
            self.installed = False

    def preempt_m0(self) -> None:
        """Ask the main thread to run the handler at its next bytecode."""
        if self.installed:
            try:
                signal.pthread_kill(self.main_ident, SIGPREEMPT)
            except (OSError, ValueError):
                pass
