"""Start-up and shut-down (asm rt0_go, proc.go: schedinit, main).

``run`` follows Go's boot order: check, args (the environment), osinit,
schedinit (procresize), newproc(runtime main), mstart on the calling
thread, which becomes M0. runtime main starts the other Ms and sysmon,
runs the ``@gort.init`` functions, then ``main``; when main returns the
program is over and the other goroutines are abandoned, as in Go.

Unlike a Go process, the Python process lives on after ``run``, so the end
is orderly: every M leaves its loop and unwinds the greenlets of its own
goroutines (a greenlet can only be unwound on its own thread; their
finally-blocks run, and any runtime call that would park raises
GreenletExit), then its thread ends; sysmon and the syscall helpers stop;
signal handlers are restored. ``run`` returns only after all of that, so it
can be called again.
"""

from __future__ import annotations

import ctypes
import inspect
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from greenlet import GreenletExit

from . import debug as _debug
from . import malloc
from .preempt import Preempter, add_trampoline
from .proc import (
    _env_default_procs,
    _init_funcs,
    _write_stderr,
    check_not_running,
    exitprogram,
    getg,
    gopark,
    main_result,
    mstart,
    newm,
    newproc1,
    seedsched,
    startm,
    unwind_goroutines,
)
from .runtime2 import M0LOCK, P_RUNNING, WAIT_PANIC, M, P, sched
from .sigqueue import initsig
from .syscall import SyscallPool
from .sysmon import Sysmon

_M_JOIN_GRACE = 0.5  # seconds an M may take to notice the end before it is interrupted
_M_JOIN_LIMIT = 1.0  # seconds teardown waits for all the Ms before abandoning the rest


def run(
    main: Callable[..., Any], *args: Any, procs: int | None = None, seed: int | None = None
) -> Any:
    """Boot the runtime, run ``main(*args)`` as goroutine 1, return its value.

    ``seed`` (or ``$GORT_SCHEDSEED``) makes scheduling reproducible (seedsched).
    """
    _check(main, procs, seed)
    dv = _debug.parse()
    n = procs if procs is not None else _env_default_procs()
    schedinit(n, dv)
    if seed is None:
        seed = _debug.env_seed()
    if seed is not None:
        seedsched(seed)
    m0 = sched.allm[0]
    pp0 = sched.allp[0]
    pp0.runq.append(newproc1(_runtime_main, (main, args), {}))
    M0LOCK.acquire()  # this thread is M0 (released by teardown)
    try:
        mstart(m0)
    finally:
        teardown(m0)
    return main_result()


def _check(main: Callable[..., Any], procs: int | None, seed: int | None) -> None:
    check_not_running("gort.run")
    if sched.running:
        raise RuntimeError("gort.run: a program is already running in this process")
    if not callable(main):
        raise TypeError(f"gort.run: main {main!r} is not callable")
    if inspect.iscoroutinefunction(main):
        raise TypeError(
            f"gort.run: main {main.__qualname__} is an async function; gort runs plain "
            "functions (goroutines need no async/await): drop the async and await"
        )
    if procs is not None and (not isinstance(procs, int) or procs < 1):
        raise ValueError(f"gort.run: procs must be a positive int, not {procs!r}")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise TypeError(f"gort.run: seed must be an int, not {seed!r}")


def schedinit(nprocs: int, dv: _debug.DebugVars) -> None:
    """Fresh scheduler state with nprocs Ps; M0 (this thread) holds P0."""
    sched.__init__()  # type: ignore[misc]
    sched.debug = dv
    sched.running = True
    sched.starttime = time.monotonic()
    sched.gomaxprocs = nprocs
    for i in range(nprocs):
        pp = P(i)
        pp.status = P_RUNNING
        sched.allp.append(pp)
    m0 = newm(sched.allp[0])
    sched.m0 = m0
    sched.mcount = 1
    preempter = Preempter()
    sched.sysmon = Sysmon(preempter)
    sched.syscalls = SyscallPool()
    sched.on_exit = _on_exit
    sched.stop_hooks.append(sched.sysmon.stop)
    sched.close_hooks.append(sched.syscalls.stop)
    sched.close_hooks.append(preempter.uninstall)
    sched.close_hooks.append(malloc.endrun)
    malloc.startrun()
    preempter.install()
    initsig()


def _on_exit() -> None:
    """The program is over: make sure M0 and sysmon notice. sched.lock is held."""
    sched.sysmon.wake()
    m0 = sched.m0
    if m0 is not None and m0.ident != threading.get_ident():
        sched.sysmon.preempter.preempt_m0()  # M0 may be running a goroutine


def _runtime_main(main: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """Goroutine 1: runtime.main."""
    for pp in sched.allp[1:]:
        startm(pp)
    if sched.sysmon is not None:
        sched.sysmon.start()
    for f in list(_init_funcs):
        f()
    try:
        value = main(*args)
    except GreenletExit:
        if sched.exiting:
            raise  # the runtime unwinding main
        value = None  # user code's GreenletExit ends main quietly, as it does a goroutine
    if sched.debug.leakcheck:
        _leakcheck()
    if not exitprogram("return", value) and not sched.exiting:
        # Another goroutine is panicking: its report ends the program, main
        # waits for it (runtime.main parks while panicking != 0).
        gopark(getg("gort.run"), WAIT_PANIC)


def _leakcheck() -> None:
    """GODEBUG=leakcheck=1: main returned; report what is blocked forever."""
    from .goroutineleak import leak_report

    report = leak_report()
    if report:
        sys.stdout.flush()
        sys.stderr.write(report)
        sys.stderr.flush()


add_trampoline(_runtime_main.__code__)  # only calls main: holds no lock


def teardown(m0: M) -> None:
    """Stop every thread the run started and unwind every goroutine.

    Bounded whatever the goroutines do: each is unwound once (``exitg``
    abandons one that swallows GreenletExit), an M still stuck after
    ``_M_JOIN_LIMIT`` (a direct blocking C call) is abandoned as the daemon
    thread it is, and the runtime is reset even when a second Ctrl-C cuts
    the unwinding short.
    """
    try:
        if not sched.exiting:
            exitprogram("interrupt", None)
        _run_hooks(sched.stop_hooks)
        deadline = time.monotonic() + _M_JOIN_LIMIT
        stuck = [m for m in sched.allm[1:] if not _join_m(m, deadline)]
        if stuck:
            _warn_stuck(stuck)
        unwind_goroutines(m0)
    finally:
        _run_hooks(sched.close_hooks)
        sched.allgs.clear()
        for pp in sched.allp:
            pp.runq.clear()
            pp.runnext = None
            pp.gfree.clear()
            pp.timers.clear()
        # One thread again: a runtime call made outside any run must take the
        # one-M paths and reach its "outside a goroutine" error, not a
        # preemption check that sees sched.exiting.
        sched.multi = False
        sched.running = False
        M0LOCK.release()


def _run_hooks(hooks: list[Callable[[], None]]) -> None:
    for hook in hooks:
        try:
            hook()
        except Exception as e:  # one failing hook must not keep the others from running
            _write_stderr(f"gort: shutdown hook {hook!r} failed: {e!r}\n")


def _join_m(m: M, deadline: float) -> bool:
    """Wait for m's thread to end, interrupting what it runs; False if it is
    still alive at the deadline (it is then left behind)."""
    t = m.thread
    if t is None:
        return True
    m.park.wakeup()
    t.join(max(0.0, min(_M_JOIN_GRACE, deadline - time.monotonic())))
    while t.is_alive() and time.monotonic() < deadline:
        # A goroutine on that M computes without calling the runtime:
        # interrupt it the only way CPython allows, an async exception
        # (it is delivered at the next bytecode: never inside a C call).
        if m.ident:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(m.ident), ctypes.py_object(GreenletExit)
            )
        t.join(max(0.0, min(_M_JOIN_GRACE, deadline - time.monotonic())))
    return not t.is_alive()


def _warn_stuck(stuck: list[M]) -> None:
    names = ", ".join(f"M{m.id}" for m in stuck)
    _write_stderr(
        f"gort: {names} did not stop within {_M_JOIN_LIMIT}s (a blocking call made "
        "without gort.syscall?); its goroutines are abandoned and its thread is "
        "left to end on its own\n"
    )
