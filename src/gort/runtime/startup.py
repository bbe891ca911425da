"""Start-up and shut-down (asm rt0_go, proc.go: schedinit, main, mstart).

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
import threading
import time
from collections.abc import Callable
from typing import Any

from greenlet import GreenletExit, getcurrent

from . import debug as _debug
from .preempt import Preempter
from .proc import (
    _env_default_procs,
    _init_funcs,
    check_not_running,
    checkdead,
    exitprogram,
    main_result,
    newproc1,
    schedule_loop,
    set_multi,
)
from .runtime2 import P_DEAD, P_RUNNING, M, P, sched
from .syscall import SyscallPool
from .sysmon import Sysmon

_M_JOIN_GRACE = 0.5  # seconds an M may take to notice the end before it is interrupted


def run(main: Callable[..., Any], *args: Any, procs: int | None = None) -> Any:
    """Boot the runtime, run ``main(*args)`` as goroutine 1, return its value."""
    _check(main, procs)
    dv = _debug.parse()
    n = procs if procs is not None else _env_default_procs()
    schedinit(n, dv)
    m0 = sched.allm[0]
    pp0 = sched.allp[0]
    pp0.runq.append(newproc1(_runtime_main, (main, args), {}))
    try:
        mstart(m0)
    finally:
        teardown(m0)
    return main_result()


def _check(main: Callable[..., Any], procs: int | None) -> None:
    check_not_running("gort.run")
    if sched.running:
        raise RuntimeError("gort.run: a program is already running in this process")
    if not callable(main):
        raise TypeError(f"gort.run: main {main!r} is not callable")
    if procs is not None and (not isinstance(procs, int) or procs < 1):
        raise ValueError(f"gort.run: procs must be a positive int, not {procs!r}")


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
    m0 = _newm(sched.allp[0])
    sched.m0 = m0
    sched.mcount = 1
    preempter = Preempter()
    sched.sysmon = Sysmon(preempter)
    sched.syscalls = SyscallPool()
    sched.on_exit = _on_exit
    sched.stop_hooks.append(sched.sysmon.stop)
    sched.close_hooks.append(sched.syscalls.stop)
    sched.close_hooks.append(preempter.uninstall)
    preempter.install()


def _on_exit() -> None:
    """The program is over: make sure M0 and sysmon notice. sched.lock is held."""
    sched.sysmon.wake()
    m0 = sched.m0
    if m0 is not None and m0.ident != threading.get_ident():
        sched.sysmon.preempter.preempt_m0()  # M0 may be running a goroutine


def _newm(pp: P) -> M:
    m = M(len(sched.allm))
    m.p = pp
    pp.m = m
    sched.allm.append(m)
    return m


def mstart(m: M) -> None:
    m.ident = threading.get_ident()
    m.g0 = getcurrent()
    schedule_loop(m)


def _mthread(m: M) -> None:
    """The body of every M but M0."""
    try:
        mstart(m)
    finally:
        _unwind_goroutines(m)
        with sched.lock:
            sched.mcount -= 1
            m.ident = 0
            set_multi()
            checkdead()  # the Ms left may all be asleep


def startm(pp: P) -> None:
    """Start a new M thread driving pp. Channels lock from now on."""
    m = _newm(pp)
    with sched.lock:
        sched.mcount += 1
    set_multi()
    t = threading.Thread(target=_mthread, args=(m,), name=f"gort-M{m.id}", daemon=True)
    m.thread = t
    t.start()


def procresize(n: int) -> None:
    """Change the number of Ps at run time (proc.go procresize).

    Growing adds Ps, each with a new M. Shrinking marks the extra Ps dead:
    their unstarted goroutines go to the global queue, while the ones that
    have started finish on that P (a greenlet cannot change thread); the
    P's M ends once none is left.
    """
    with sched.lock:
        old = sched.gomaxprocs
        sched.gomaxprocs = n
    for pp in sched.allp[n:old]:
        pp.status = P_DEAD
        _drain_unstarted(pp)
        m = pp.m
        if m is not None:
            m.park.wakeup()
    for i in range(old, n):
        if i < len(sched.allp):
            pp = sched.allp[i]
            if pp.m is not None and pp.m.ident:
                pp.status = P_RUNNING
                pp.m.park.wakeup()
                continue
            pp.status = P_RUNNING
        else:
            pp = P(i)
            pp.status = P_RUNNING
            sched.allp.append(pp)
        startm(pp)


def _drain_unstarted(pp: P) -> None:
    """Move pp's unstarted Gs to the global queue (caller is not pp's M)."""
    q = pp.runq
    for _ in range(len(q)):
        try:
            gp = q.popleft()
        except IndexError:
            break
        (sched.runq if gp.glet is None else q).append(gp)


def _runtime_main(main: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """Goroutine 1: runtime.main."""
    for pp in sched.allp[1:]:
        startm(pp)
    if sched.sysmon is not None:
        sched.sysmon.start()
    for f in list(_init_funcs):
        f()
    value = main(*args)
    exitprogram("return", value)


def teardown(m0: M) -> None:
    """Stop every thread the run started and unwind every goroutine."""
    if not sched.exiting:
        exitprogram("interrupt", None)
    for hook in sched.stop_hooks:
        hook()
    for m in sched.allm[1:]:
        _join_m(m)
    _unwind_goroutines(m0)
    for hook in sched.close_hooks:
        hook()
    sched.allgs.clear()
    for pp in sched.allp:
        pp.runq.clear()
        pp.runnext = None
        pp.gfree.clear()
        pp.timers.clear()
    sched.running = False


def _join_m(m: M) -> None:
    t = m.thread
    if t is None:
        return
    m.park.wakeup()
    t.join(_M_JOIN_GRACE)
    while t.is_alive():
        # A goroutine on that M computes without calling the runtime:
        # interrupt it the only way CPython allows, an async exception.
        if m.ident:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(m.ident), ctypes.py_object(GreenletExit)
            )
        t.join(_M_JOIN_GRACE)


def _unwind_goroutines(m: M) -> None:
    """Unwind this M's goroutines and idle greenlets, on this M's thread."""
    pp = m.p
    if pp is None:
        return
    mine = [gp for gp in list(sched.allgs.values()) if gp.p is pp and gp.glet is not None]
    for gp in mine:
        gl = gp.glet
        if gl is not None and not gl.dead:
            try:
                gl.throw(GreenletExit)
            except BaseException:
                pass
    while pp.gfree:
        gl = pp.gfree.pop()
        if not gl.dead:
            try:
                gl.throw(GreenletExit)
            except BaseException:
                pass
