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

import ctypes
import dis
import os
import signal
import sys
import sysconfig
import threading
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any

from greenlet import getcurrent

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


# Opcodes during which C code may run and check for signals (a call, a
# C iterator's next, a context manager's __enter__): a handler that finds
# the innermost frame at one of these runs from inside that C code, whose
# state a switch would freeze mid-way. Names from the opcode tables of
# 3.11 (PRECALL), 3.12 (CALL_INTRINSIC_*) and 3.13 (CALL_KW); the eval
# breaker also runs right after a CALL completes, which this treats as
# unsafe too (sysmon signals again).
_CALL_OPS = frozenset(
    dis.opmap[name]
    for name in (
        "CALL",
        "PRECALL",
        "CALL_KW",
        "CALL_FUNCTION_EX",
        "CALL_INTRINSIC_1",
        "CALL_INTRINSIC_2",
        "FOR_ITER",
        "SEND",
        "BEFORE_WITH",
        "BEFORE_ASYNC_WITH",
    )
    if name in dis.opmap
)


def _frame_walker() -> Callable[[FrameType, frozenset[CodeType]], bool] | None:
    """A test that no C frame separates a frame from its caller, for the
    CPython versions whose frame layout it knows (3.11-3.13, GIL builds,
    64-bit, no debug refs); None elsewhere (no async preemption there).

    CPython 3.11+ runs a Python-to-Python call in the same C loop; a call
    from C code (a C function calling back into Python) starts a new loop,
    which 3.11 marks on the callee's frame (``is_entry``) and 3.12/3.13 mark
    with a shim frame owned by the C stack (``FRAME_OWNED_BY_CSTACK``)
    between the two. ``PyFrameObject.f_frame`` is at offset 24.
    """
    version = sys.version_info[:2]
    if (
        version not in ((3, 11), (3, 12), (3, 13))
        or sysconfig.get_config_var("Py_GIL_DISABLED")
        or hasattr(sys, "gettotalrefcount")
        or ctypes.sizeof(ctypes.c_void_p) != 8
    ):
        return None
    ptr = ctypes.c_void_p.from_address

    def iframe(f: FrameType) -> int:
        return ptr(id(f) + 24).value or 0

    if version == (3, 11):

        def linked(f: FrameType, entry_ok: frozenset[CodeType]) -> bool:
            # _PyInterpreterFrame: ..., int stacktop @64, bool is_entry @68
            return not ctypes.c_bool.from_address(iframe(f) + 68).value or f.f_code in entry_ok

        return linked

    def linked_312(f: FrameType, entry_ok: frozenset[CodeType]) -> bool:
        # _PyInterpreterFrame: code @0, previous @8: the caller's frame
        # itself, or a C-stack shim in between.
        back = f.f_back
        return back is not None and ptr(iframe(f) + 8).value == iframe(back)

    return linked_312


_linked = _frame_walker()


def _entry_ok(gp: Any) -> frozenset[CodeType]:
    """Codes whose frame may be entered from C right above _gbody: the
    goroutine's own function (called through PyObject_Call, which holds
    nothing, when it takes keywords or more than three arguments), and
    main below runtime main's trampoline."""
    codes = set()
    for fn in (gp.fn, *(gp.args[:1] if gp.fn.__code__ in _trampolines else ())):
        code = getattr(getattr(fn, "__func__", fn), "__code__", None)
        if isinstance(code, CodeType):
            codes.add(code)
    return frozenset(codes)


def async_safe(frame: FrameType | None, gp: Any = None) -> bool:
    """Is the interrupted goroutine at an async safe point?

    Every frame must be user code, and no C code may be running between the
    goroutine's bottom frame (gort's ``_gbody``) and the signal: neither in
    the innermost frame (a signal that arrives during ``time.sleep`` or
    ``lock.acquire`` runs its handler from within that function) nor below
    a frame that C code called back (``io.BufferedReader.read`` calling a
    Python ``readinto`` holds the reader's lock). A switch there would
    freeze that C code mid-way and let another goroutine of the same thread
    into it.
    """
    if frame is None or _linked is None or frame.f_code.co_code[frame.f_lasti] in _CALL_OPS:
        return False
    bottom = _gbody.__code__
    entry_ok = _entry_ok(gp) if gp is not None else frozenset()
    while frame is not None:
        code = frame.f_code
        if code is bottom:
            return True
        if code not in _trampolines and not is_user_file(code.co_filename):
            return False
        back = frame.f_back
        below_bottom = back is not None and (back.f_code is bottom or back.f_code in _trampolines)
        if not _linked(frame, entry_ok if below_bottom else frozenset()):
            return False
        frame = back
    return False


_RUNTIME_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "")


def exit_safe(frame: FrameType | None) -> bool:
    """May the end of the program raise GreenletExit here?

    Raising is not switching: an exception leaves C code (a callback's
    caller, a blocking call) and library code through their normal error
    paths, which release what they hold. Only the runtime's own code
    pairs lock calls without try/finally (a channel's lock on the fast
    path), so the exception must not land in gort.runtime.
    """
    bottom = _gbody.__code__
    while frame is not None:
        code = frame.f_code
        if code is bottom:
            return True
        if code not in _trampolines and code.co_filename.startswith(_RUNTIME_DIR):
            return False
        frame = frame.f_back
    return False


def _on_sigurg(signum: int, frame: FrameType | None) -> None:
    """The preemption signal's handler, on the main thread."""
    gp = getattr(getcurrent(), "gp", None)
    if gp is None or gp.glet is None:
        return  # on g0 or outside the runtime: nothing to preempt
    pp: P | None = gp.p
    if pp is None:
        return
    if sched.exiting:
        # The program is over: unwind this goroutine, but only at a safe
        # point (it may hold a channel's lock); sysmon signals again.
        if exit_safe(frame):
            _proc.exitg(gp)
            pp.m.g0.switch()  # abandoned: never resumed
        return
    if not pp.preempt_async:
        return
    if not async_safe(frame, gp):
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
