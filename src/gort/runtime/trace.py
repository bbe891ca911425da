"""The execution tracer (mirrors runtime/trace.go; Go 1.19's trace format).

The scheduler calls the hooks below at the points where Go's runtime
records events: goroutine create, start, end, block (by cause), unblock
(from the goroutine or the scheduler that readied it), gosched, preempt,
syscall enter and exit, proc start and stop, and Python's garbage
collections. Each hook site is one test of ``sched.tracing``, so a program
that does not trace pays one attribute load per site, and none at all in
the functions of the switch path, which run a copy without their hook
sites while tracing is off (``hot``).

Recording. Events go to a buffer per P, written only by the M that drives
that P (each P has one M for life), so recording takes no lock. Threads
without a P (sysmon, the syscall helpers, the garbage collector's callback
on any thread) append to one global buffer, Go's ``traceGlobProc``. An event
is a tuple ``(ticks, type, *args)``: encoding waits until ``stop``.

Consistency. Go's parser checks every goroutine's state machine strictly
and orders the per-P batches by per-goroutine sequence numbers, then insists
that timestamps respect that order. Go gets this from stop-the-world at
start and from taking timestamps in the right places. Here another M may
unblock a goroutine in the instant between the goroutine queueing itself on
a channel and recording its own block event, so ``stop`` first merges the
batches the way Go's parser does (a frontier of events whose goroutine is
in the state they require, lowest timestamp first) and then makes the
timestamps monotonic along that order: a skew of microseconds, never a
reordering within a batch.

State known at ``start`` (Go's StartTrace): every live goroutine is
announced with GoCreate, plus GoWaiting or GoInSyscall. A goroutine running
on another M when tracing starts gets its GoStart lazily, on the first
event that needs it to be running; a P gets its ProcStart the same way.

Rejected: encoding varints as events happen (about 1 us per event in
Python, against 0.1 us for a tuple append); a lock around every buffer.
"""

from __future__ import annotations
import __future__

import ast
import gc
import inspect
import os
import sys
import threading
from collections.abc import Callable
from time import monotonic_ns
from types import CodeType, FrameType, ModuleType
from typing import Any, BinaryIO

from greenlet import getcurrent

from .runtime2 import (
    G_RUNNABLE,
    G_SYSCALL,
    G_WAITING,
    WAIT_CHAN_RECEIVE,
    WAIT_CHAN_RECEIVE_NIL,
    WAIT_CHAN_SEND,
    WAIT_CHAN_SEND_NIL,
    WAIT_IO,
    WAIT_SELECT,
    WAIT_SELECT_NO_CASES,
    WAIT_SEMACQUIRE,
    WAIT_SLEEP,
    G,
    P,
    sched,
)
from .traceback import is_runtime_file

# Event types (runtime/trace.go traceEv*, version 1.19).
EV_BATCH = 1  # [pid, ticks]
EV_FREQUENCY = 2  # [ticks per second]
EV_STACK = 3  # [id, n, {pc, func, file, line} * n]
EV_GOMAXPROCS = 4  # [ticks, procs, stack]
EV_PROC_START = 5  # [ticks, thread id]
EV_PROC_STOP = 6  # [ticks]
EV_GC_START = 7  # [ticks, seq, stack]
EV_GC_DONE = 8  # [ticks]
EV_GO_CREATE = 13  # [ticks, goid, new stack, stack]
EV_GO_START = 14  # [ticks, goid, seq]
EV_GO_END = 15  # [ticks]
EV_GO_STOP = 16  # [ticks, stack]: blocked forever
EV_GO_SCHED = 17  # [ticks, stack]
EV_GO_PREEMPT = 18  # [ticks, stack]
EV_GO_SLEEP = 19  # [ticks, stack]
EV_GO_BLOCK = 20  # [ticks, stack]
EV_GO_UNBLOCK = 21  # [ticks, goid, seq, stack]
EV_GO_BLOCK_SEND = 22
EV_GO_BLOCK_RECV = 23
EV_GO_BLOCK_SELECT = 24
EV_GO_BLOCK_SYNC = 25
EV_GO_BLOCK_COND = 26
EV_GO_BLOCK_NET = 27
EV_GO_SYSCALL = 28  # [ticks, stack]
EV_GO_SYSEXIT = 29  # [ticks, goid, seq, real ticks]
EV_GO_SYSBLOCK = 30  # [ticks]
EV_GO_WAITING = 31  # [ticks, goid]
EV_GO_IN_SYSCALL = 32  # [ticks, goid]
EV_HEAP_ALLOC = 33  # [ticks, bytes]
EV_TIMER_GOROUTINE = 35  # [goid] (before Go 1.14)
EV_STRING = 37  # [id, len, bytes]
EV_GO_START_LOCAL = 38  # [ticks, goid] (Go's runtime writes these; gort does not)
EV_GO_UNBLOCK_LOCAL = 39  # [ticks, goid, stack]
EV_GO_SYSEXIT_LOCAL = 40  # [ticks, goid, real ticks]
EV_USER_TASK_CREATE = 45  # [ticks, task, parent, name string, stack]
EV_USER_TASK_END = 46  # [ticks, task, stack]
EV_USER_REGION = 47  # [ticks, task, mode, name string, stack]
EV_USER_LOG = 48  # [ticks, task, key string, stack] + value
EV_CPU_SAMPLE = 49  # [ticks, stack, real ticks, p, goid]

EV_NAMES = {
    EV_GOMAXPROCS: "Gomaxprocs",
    EV_PROC_START: "ProcStart",
    EV_PROC_STOP: "ProcStop",
    EV_GC_START: "GCStart",
    EV_GC_DONE: "GCDone",
    EV_GO_CREATE: "GoCreate",
    EV_GO_START: "GoStart",
    EV_GO_END: "GoEnd",
    EV_GO_STOP: "GoStop",
    EV_GO_SCHED: "GoSched",
    EV_GO_PREEMPT: "GoPreempt",
    EV_GO_SLEEP: "GoSleep",
    EV_GO_BLOCK: "GoBlock",
    EV_GO_UNBLOCK: "GoUnblock",
    EV_GO_BLOCK_SEND: "GoBlockSend",
    EV_GO_BLOCK_RECV: "GoBlockRecv",
    EV_GO_BLOCK_SELECT: "GoBlockSelect",
    EV_GO_BLOCK_SYNC: "GoBlockSync",
    EV_GO_BLOCK_COND: "GoBlockCond",
    EV_GO_BLOCK_NET: "GoBlockNet",
    EV_GO_SYSCALL: "GoSysCall",
    EV_GO_SYSEXIT: "GoSysExit",
    EV_GO_SYSBLOCK: "GoSysBlock",
    EV_GO_WAITING: "GoWaiting",
    EV_GO_IN_SYSCALL: "GoInSyscall",
    EV_HEAP_ALLOC: "HeapAlloc",
    EV_USER_TASK_CREATE: "UserTaskCreate",
    EV_USER_TASK_END: "UserTaskEnd",
    EV_USER_REGION: "UserRegion",
    EV_USER_LOG: "UserLog",
}

# Events whose last argument is a stack id (parser.go EventDescriptions).
HAS_STACK = frozenset(
    {
        EV_GOMAXPROCS,
        EV_GC_START,
        EV_GO_CREATE,
        EV_GO_STOP,
        EV_GO_SCHED,
        EV_GO_PREEMPT,
        EV_GO_SLEEP,
        EV_GO_BLOCK,
        EV_GO_UNBLOCK,
        EV_GO_UNBLOCK_LOCAL,
        EV_GO_BLOCK_SEND,
        EV_GO_BLOCK_RECV,
        EV_GO_BLOCK_SELECT,
        EV_GO_BLOCK_SYNC,
        EV_GO_BLOCK_COND,
        EV_GO_BLOCK_NET,
        EV_GO_SYSCALL,
        EV_USER_TASK_CREATE,
        EV_USER_TASK_END,
        EV_USER_REGION,
        EV_USER_LOG,
        EV_CPU_SAMPLE,
    }
)

BLOCK_EVENTS = frozenset(
    {
        EV_GO_SLEEP,
        EV_GO_BLOCK,
        EV_GO_BLOCK_SEND,
        EV_GO_BLOCK_RECV,
        EV_GO_BLOCK_SELECT,
        EV_GO_BLOCK_SYNC,
        EV_GO_BLOCK_COND,
        EV_GO_BLOCK_NET,
    }
)

# The block event for each wait reason, as Go's gopark call sites pass them
# (chan.go, select.go, time.go, sema.go, netpoll.go). Blocked forever is
# GoStop; anything not listed is a plain GoBlock.
_BLOCK_EVENT = {
    WAIT_CHAN_RECEIVE: EV_GO_BLOCK_RECV,
    WAIT_CHAN_SEND: EV_GO_BLOCK_SEND,
    WAIT_SELECT: EV_GO_BLOCK_SELECT,
    WAIT_SLEEP: EV_GO_SLEEP,
    WAIT_IO: EV_GO_BLOCK_NET,
    WAIT_SEMACQUIRE: EV_GO_BLOCK_SYNC,
    "sync.Mutex.Lock": EV_GO_BLOCK_SYNC,
    "sync.RWMutex.RLock": EV_GO_BLOCK_SYNC,
    "sync.RWMutex.Lock": EV_GO_BLOCK_SYNC,
    "sync.WaitGroup.Wait": EV_GO_BLOCK_SYNC,
    "sync.Cond.Wait": EV_GO_BLOCK_COND,
    WAIT_CHAN_RECEIVE_NIL: EV_GO_STOP,
    WAIT_CHAN_SEND_NIL: EV_GO_STOP,
    WAIT_SELECT_NO_CASES: EV_GO_STOP,
}

GLOBAL_P = -1  # traceGlobProc: events of threads that hold no P
MAX_STACK = 32  # frames kept per stack (Go's traceStackSize is 128)
HEADER = b"go 1.19 trace\x00\x00\x00"
TICKS_PER_SEC = 1_000_000_000  # ticks are monotonic_ns

# Tracer-side goroutine states (the parser's gRunnable, gRunning, gWaiting).
T_RUNNABLE = 1
T_RUNNING = 2
T_WAITING = 3
T_SYSCALL = 4  # waiting, and its wake-up is a GoSysExit, not a GoUnblock
T_DEAD = 5

Event = tuple[Any, ...]  # (ticks, type, *args)


class GState:
    """What the trace has said about one goroutine so far.

    Written by whichever M records an event about the goroutine; the
    runtime never lets two Ms change one G's state at once (only its home M
    runs it, only one waker wins it), so no lock is needed.
    """

    __slots__ = ("early", "gosched", "lazy", "seq", "state", "sysexit")

    def __init__(self, state: int, seq: int) -> None:
        self.state = state
        # Started before tracing did: running on some M, or parked in code
        # without hook sites; its next GoStart is recorded lazily.
        self.lazy = False
        self.seq = seq  # the next GoStart/GoUnblock/GoSysExit carries this
        self.sysexit = 0  # ticks when its syscall returned, until GoSysExit
        self.gosched = False  # the next yield is a Gosched, not a preemption
        # Unblocked (by another M) between queueing itself and recording its
        # block: the unblock is recorded, the block will be (Tracer.statelock).
        self.early = False


class PState:
    """One P's buffer and what its batch says runs on it. Owner M only."""

    __slots__ = ("buf", "curg", "pid", "running")

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.buf: list[Event] = []
        self.running = pid == GLOBAL_P  # ProcStart emitted (the global buffer needs none)
        self.curg = 0  # the goroutine this batch has running (0: none)


_DEAD = GState(T_DEAD, 0)


class Tracer:
    """One tracing session, from ``start`` to ``stop``."""

    def __init__(self) -> None:
        self.ps: dict[int, PState] = {}
        self.glob = PState(GLOBAL_P)
        self.gs: dict[int, GState] = {}
        self.threadp: dict[int, P | None] = {}  # thread ident -> the P its M drives
        # Stack table: frames are (code, line) pairs with a made-up pc each.
        self.pcs: dict[tuple[CodeType, int], int] = {}
        self.frames: list[tuple[str, str, int]] = []  # pc - 1 -> (func, file, line)
        self.stacks: dict[tuple[int, ...], int] = {}
        self.fnstacks: dict[Any, int] = {}  # a goroutine's function -> its start stack
        self.strings: dict[str, int] = {}
        self.taskids = 0
        self.gcseq = 0
        self.tasklock = threading.Lock()
        self.statelock = threading.Lock()  # GState.early against the parking G's gostop
        self.start_ticks = monotonic_ns()
        self.end_ticks = 0

    # -- buffers -----------------------------------------------------------

    def pstate(self, pp: P) -> PState:
        """pp's state; a P that has not started in this trace starts now."""
        st = self.ps.get(pp.id)
        if st is None:
            st = self.ps.setdefault(pp.id, PState(pp.id))
        if not st.running:
            st.running = True
            m = pp.m
            st.buf.append((monotonic_ns(), EV_PROC_START, m.id if m is not None else 0))
        return st

    def here(self) -> PState:
        """The buffer of the calling thread: its M's P, or the global one."""
        ident = threading.get_ident()
        pp = self.threadp.get(ident)
        if pp is None or pp.m is None or pp.m.ident != ident:
            pp = None
            for m in list(sched.allm):
                if m.ident == ident:
                    pp = m.p
            self.threadp[ident] = pp
        return self.glob if pp is None else self.pstate(pp)

    # -- goroutines --------------------------------------------------------

    def known(self, gp: G, st: PState) -> GState:
        """gp's trace state, announcing gp (GoCreate, GoWaiting...) if new."""
        g = self.gs.get(gp.goid)
        if g is not None:
            return g
        g = self.gs.setdefault(gp.goid, GState(T_RUNNABLE, 1))
        if g.seq != 1 or g.state != T_RUNNABLE:
            return g  # another M announced it first
        now = monotonic_ns()
        st.buf.append((now, EV_GO_CREATE, gp.goid, self.fnstack(gp), 0))
        if gp.status == G_WAITING:
            st.buf.append((now, EV_GO_WAITING, gp.goid))
            g.state, g.seq = T_WAITING, 2
        elif gp.status == G_SYSCALL:
            st.buf.append((now, EV_GO_IN_SYSCALL, gp.goid))
            g.state, g.seq = T_SYSCALL, 2
        # Running, or started and parked in code without hook sites (see
        # ``hot``): its next start is not recorded where it happens.
        g.lazy = gp.glet is not None
        return g

    def running(self, gp: G, st: PState) -> GState:
        """gp runs on st's P: make the batch say so (lazy GoStart)."""
        g = self.known(gp, st)
        if st.curg != gp.goid or g.state != T_RUNNING:
            self._start(gp, g, st)
        return g

    def _start(self, gp: G, g: GState, st: PState) -> None:
        now = monotonic_ns()
        buf = st.buf
        if st.curg and st.curg != gp.goid:
            # The batch still has another goroutine running (it left the P
            # without a hook, at the program's end): it stops being current.
            prev = self.gs.get(st.curg)
            if prev is not None and prev.state == T_RUNNING:
                buf.append((now, EV_GO_PREEMPT, 0))
                prev.state = T_RUNNABLE
        if g.state == T_SYSCALL:
            buf.append((now, EV_GO_SYSEXIT, gp.goid, g.seq, g.sysexit or now))
            g.seq += 1
            g.sysexit = 0
        elif g.state == T_WAITING:
            # Readied by a path that recorded no unblock: say the scheduler did.
            buf.append((now, EV_GO_UNBLOCK, gp.goid, g.seq, 0))
            g.seq += 1
        elif g.state != T_RUNNABLE:
            return
        buf.append((now, EV_GO_START, gp.goid, g.seq))
        g.seq += 1
        g.state = T_RUNNING
        g.lazy = False
        st.curg = gp.goid

    # -- stacks and strings ------------------------------------------------

    def string(self, s: str) -> int:
        sid = self.strings.get(s)
        if sid is None:
            sid = self.strings.setdefault(s, len(self.strings) + 1)
        return sid

    def _pc(self, code: CodeType, line: int, module: str) -> int:
        key = (code, line)
        pc = self.pcs.get(key)
        if pc is None:
            with self.tasklock:
                pc = self.pcs.get(key)
                if pc is None:
                    self.frames.append((f"{module}.{code.co_qualname}", code.co_filename, line))
                    pc = self.pcs[key] = len(self.frames)
        return pc

    def stack(self, frame: FrameType | None) -> int:
        """The stack id of frame and its callers, innermost first.

        gort's own frames are left out, as Go leaves runtime frames out of
        user stacks; when only gort's frames are there (the scheduler
        readying a goroutine for a timer) they are kept.
        """
        pcs: list[int] = []
        rt: list[int] = []
        f = frame
        while f is not None and len(pcs) < MAX_STACK:
            code = f.f_code
            if code.co_name == "schedule_loop" and is_runtime_file(code.co_filename):
                break  # g0's bottom: what lies below is gort.run's caller
            pc = self._pc(code, f.f_lineno, f.f_globals.get("__name__", "?"))
            if is_runtime_file(code.co_filename):
                if not pcs and len(rt) < MAX_STACK:
                    rt.append(pc)
            else:
                pcs.append(pc)
            f = f.f_back
        key = tuple(pcs or rt)
        if not key:
            return 0
        sid = self.stacks.get(key)
        if sid is None:
            sid = self.stacks.setdefault(key, len(self.stacks) + 1)
        return sid

    def fnstack(self, gp: G) -> int:
        """The one-frame stack naming gp's function (GoCreate's new stack)."""
        fn = gp.fn
        sid = self.fnstacks.get(fn)
        if sid is not None:
            return sid
        fn = getattr(fn, "__func__", fn)
        code = getattr(fn, "__code__", None)
        if code is None:
            key = (self._named(getattr(fn, "__qualname__", repr(fn))),)
        else:
            module = getattr(fn, "__module__", None) or "?"
            key = (self._pc(code, code.co_firstlineno, module),)
        sid = self.stacks.get(key)
        if sid is None:
            sid = self.stacks.setdefault(key, len(self.stacks) + 1)
        self.fnstacks[gp.fn] = sid
        return sid

    def _named(self, name: str) -> int:
        """A pc for a function with no code object (a builtin, a partial)."""
        with self.tasklock:
            self.frames.append((name, "?", 0))
            return len(self.frames)


tracer: Tracer | None = None  # the session; set while sched.tracing


def _caller(depth: int = 2) -> FrameType:
    return sys._getframe(depth)


# ---------------------------------------------------------------------------
# Hooks, called by the runtime under ``if sched.tracing:``.


def gocreate(newg: G, pp: P | None, frame: FrameType | None) -> None:
    """newproc: newg was created by the goroutine running frame (or by the
    scheduler, for after_func). Recorded before newg is queued."""
    t = tracer
    if t is None:
        return
    st = t.here() if pp is None else t.pstate(pp)
    stk = 0
    if frame is not None:  # made by a goroutine (else by the scheduler: after_func)
        cur = getattr(getcurrent(), "gp", None)
        if cur is not None:
            t.running(cur, st)
        stk = t.stack(frame)
    t.gs[newg.goid] = GState(T_RUNNABLE, 1)
    st.buf.append((monotonic_ns(), EV_GO_CREATE, newg.goid, t.fnstack(newg), stk))


def gostart(gp: G, pp: P) -> None:
    """gp runs on pp now (execute). Called by gp itself, once switched to."""
    t = tracer
    if t is None:
        return
    st = t.pstate(pp)
    t.running(gp, st)


def gostop(gp: G, pp: P) -> None:
    """gp gives up pp (schedule): block, yield or syscall, by gp's status."""
    t = tracer
    if t is None:
        return
    st = t.pstate(pp)
    g = t.running(gp, st)
    status = gp.status
    buf = st.buf
    if status == G_WAITING:
        ev = _BLOCK_EVENT.get(gp.waitreason, EV_GO_BLOCK)
        stk = t.stack(_caller(3))
        after = T_DEAD if ev == EV_GO_STOP else T_WAITING
        # Another thread may unblock gp between its queueing and this event:
        # another M, or with one M the poller run by sysmon.
        if sched.multi or sched.netpoll is not None:
            with t.statelock:
                buf.append((monotonic_ns(), ev, stk))
                g.state = T_RUNNABLE if g.early else after
                g.early = False
        else:
            buf.append((monotonic_ns(), ev, stk))
            g.state = after
    elif status == G_RUNNABLE:
        ev = EV_GO_SCHED if g.gosched else EV_GO_PREEMPT
        g.gosched = False
        buf.append((monotonic_ns(), ev, t.stack(_caller(3))))
        g.state = T_RUNNABLE
    elif status == G_SYSCALL:
        buf.append((monotonic_ns(), EV_GO_SYSCALL, t.stack(_caller(3))))
        buf.append((monotonic_ns(), EV_GO_SYSBLOCK))
        g.state = T_SYSCALL
    else:
        return
    st.curg = 0


def gosched(gp: G) -> None:
    """The next yield of gp is Gosched (GoSched), not a preemption."""
    t = tracer
    if t is not None:
        g = t.gs.get(gp.goid)
        if g is not None:
            g.gosched = True


def goend(gp: G, pp: P) -> None:
    """goexit0: gp has finished."""
    t = tracer
    if t is None:
        return
    st = t.pstate(pp)
    t.running(gp, st)
    st.buf.append((monotonic_ns(), EV_GO_END))
    t.gs[gp.goid] = _DEAD
    st.curg = 0


def unblock(gp: G) -> None:
    """ready: gp (waiting) is made runnable by the calling goroutine or by
    the scheduler (timers, the poller). Recorded before gp is queued, so
    that its GoStart, on whatever M, comes later."""
    t = tracer
    if t is None:
        return
    st = t.here()
    cur: G | None = getattr(getcurrent(), "gp", None)
    if cur is not None and st is not t.glob:
        # The unblocker is the batch's current goroutine, except one that
        # was running when tracing started and has no GoStart yet. (Timers
        # also fire on the greenlet of a goroutine that just parked: the
        # batch rightly names no goroutine then.)
        cg = t.gs.get(cur.goid)
        if cg is None or cg.lazy:
            t.running(cur, st)
    g = t.known(gp, st)
    if g.state == T_SYSCALL:
        g.sysexit = monotonic_ns()  # the helper's return: GoSysExit at restart
        return
    stk = t.stack(_caller(3))
    if g.state == T_RUNNING and gp.status == G_WAITING:
        # gp (on another M) queued itself and let go of the channel's lock
        # but has not recorded its block yet: record the unblock now; the
        # merge at stop puts it after the block.
        with t.statelock:
            if g.state == T_RUNNING:
                st.buf.append((monotonic_ns(), EV_GO_UNBLOCK, gp.goid, g.seq, stk))
                g.seq += 1
                g.early = True
                return
    if g.state != T_WAITING:
        return
    st.buf.append((monotonic_ns(), EV_GO_UNBLOCK, gp.goid, g.seq, stk))
    g.seq += 1
    g.state = T_RUNNABLE


def procstop(pp: P) -> None:
    """pp's M goes to sleep with nothing to run (stopm)."""
    t = tracer
    if t is None:
        return
    st = t.ps.get(pp.id)
    if st is not None and st.running and not st.curg:
        st.buf.append((monotonic_ns(), EV_PROC_STOP))
        st.running = False


def procstart(pp: P) -> None:
    """pp's M is awake again."""
    t = tracer
    if t is not None:
        t.pstate(pp)


def _gc_callback(phase: str, info: dict[str, int]) -> None:
    """gc.callbacks: Python's collections are the trace's GC cycles."""
    t = tracer
    if t is None:
        return
    buf = t.glob.buf
    if phase == "start":
        buf.append((monotonic_ns(), EV_GC_START, t.gcseq, 0))
        t.gcseq += 1
    else:
        now = monotonic_ns()
        buf.append((now, EV_GC_DONE))
        buf.append((now, EV_HEAP_ALLOC, heap_bytes()))


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def heap_bytes() -> int:
    """The heap counter: the process's resident memory (Linux), else an
    estimate from the interpreter's allocated blocks."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return sys.getallocatedblocks() * 64


# ---------------------------------------------------------------------------
# User annotations (runtime/trace: NewTask, WithRegion, Log).


def user_task_create(parent: int, name: str) -> int:
    t = tracer
    if t is None:
        return 0
    with t.tasklock:
        t.taskids += 1
        tid = t.taskids
    st = _user_buf(t)
    st.buf.append(
        (monotonic_ns(), EV_USER_TASK_CREATE, tid, parent, t.string(name), t.stack(_caller(3)))
    )
    return tid


def user_task_end(tid: int) -> None:
    t = tracer
    if t is None:
        return
    st = _user_buf(t)
    st.buf.append((monotonic_ns(), EV_USER_TASK_END, tid, t.stack(_caller(3))))


def user_region(tid: int, mode: int, name: str) -> None:
    t = tracer
    if t is None:
        return
    st = _user_buf(t)
    st.buf.append((monotonic_ns(), EV_USER_REGION, tid, mode, t.string(name), t.stack(_caller(3))))


def user_log(tid: int, category: str, message: str) -> None:
    t = tracer
    if t is None:
        return
    st = _user_buf(t)
    st.buf.append(
        (monotonic_ns(), EV_USER_LOG, tid, t.string(category), t.stack(_caller(3)), message)
    )


def _user_buf(t: Tracer) -> PState:
    """The calling goroutine's P buffer, with the goroutine running in it."""
    gp: G | None = getattr(getcurrent(), "gp", None)
    if gp is None or gp.p is None:
        return t.glob
    st = t.pstate(gp.p)
    t.running(gp, st)
    return st


# ---------------------------------------------------------------------------
# Hot functions: the runtime's functions that run on every switch or
# hand-off (schedule, ready, a channel's send and recv...) register with
# ``hot``. While tracing is off they run a twin compiled from their own
# source with every hook site (``if sched.tracing:`` and its body) left
# out, so that not tracing costs them nothing, not even the flag test;
# ``start`` and ``stop`` swap ``__code__`` between the two. A frame already
# running keeps the code it started with, so a goroutine parked in
# schedule() when tracing starts resumes without recording its GoStart:
# the tracer records it lazily, at the goroutine's next event, as for the
# goroutines running when tracing starts. (_gbody, the loop every
# goroutine greenlet runs for its whole life, keeps its flag test.)

# (function, its code with the hook sites, its code without them)
_hot: list[tuple[Any, CodeType, CodeType]] = []


def hot(*fns: Callable[..., Any]) -> None:
    """Run fns without their hook sites while tracing is off. A function
    whose source cannot be read keeps its flag tests (still correct)."""
    for fn in fns:
        traced: CodeType = fn.__code__
        plain = _without_hooks(fn)
        if plain is None:
            continue
        _hot.append((fn, traced, plain))
        if tracer is None:
            fn.__code__ = plain


def _install(tracing: bool) -> None:
    for fn, traced, plain in _hot:
        fn.__code__ = traced if tracing else plain


def _is_hook(stmt: ast.stmt) -> bool:
    """``if sched.tracing:`` with no else: a hook site."""
    if not isinstance(stmt, ast.If) or stmt.orelse:
        return False
    test = stmt.test
    return (
        isinstance(test, ast.Attribute)
        and test.attr == "tracing"
        and isinstance(test.value, ast.Name)
        and test.value.id == "sched"
    )


def _strip(stmts: list[Any]) -> list[Any]:
    """stmts without their hook sites, at any depth (statements only: a
    hook site is a statement)."""
    kept = [s for s in stmts if not _is_hook(s)]
    for s in kept:
        for inner in (s, *getattr(s, "handlers", ())):
            for name in ("body", "orelse", "finalbody"):
                block = getattr(inner, name, None)
                if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                    setattr(inner, name, _strip(block) or [ast.copy_location(ast.Pass(), block[0])])
    return kept


def _without_hooks(fn: Callable[..., Any]) -> CodeType | None:
    """fn's code recompiled without its hook sites (same file, same line
    numbers); None if its source is unavailable or is not what fn runs."""
    code: CodeType = fn.__code__
    try:
        lines, first = inspect.findsource(fn)
    except (OSError, TypeError):
        return None
    first += 1  # findsource counts from 0
    # A method is indented: under an ``if`` on the line above, it compiles
    # with its own line and column numbers (what tracebacks point at).
    indented = lines[first - 1][:1].isspace()
    head = "\n" * (first - 2) + "if 1:\n" if indented else "\n" * (first - 1)
    last = max(end for _, end, _, _ in code.co_positions() if end is not None)
    tree = ast.parse(head + "".join(lines[first - 1 : last]))
    # The compiler calls a function of an imported module without
    # LOAD_METHOD: it must see the module's imports to compile the same code.
    modules = sorted(k for k, v in fn.__globals__.items() if isinstance(v, ModuleType))
    tree.body[:0] = [_import(k) for k in modules]
    if _compile(tree, code).co_code != code.co_code:
        return None  # the file changed since the module was imported
    tree.body = _strip(tree.body)
    return _compile(tree, code)


def _import(name: str) -> ast.Import:
    alias = ast.alias(name=name, lineno=1, col_offset=0, end_lineno=1, end_col_offset=0)
    return ast.Import(names=[alias], lineno=1, col_offset=0, end_lineno=1, end_col_offset=0)


def _compile(tree: ast.Module, code: CodeType) -> CodeType:
    """The code of the function defined in tree, compiled as the module of
    ``code`` was, named as ``code`` is."""
    flags = __future__.annotations.compiler_flag
    module = compile(tree, code.co_filename, "exec", flags=flags, dont_inherit=True)
    for c in module.co_consts:
        if isinstance(c, CodeType) and c.co_name == code.co_name:
            return c.replace(co_qualname=code.co_qualname)
    raise AssertionError(f"gort: {code.co_qualname} not found in its own source")


# ---------------------------------------------------------------------------
# Starting and stopping.


def start() -> Tracer:
    """Begin a session (StartTrace): every live goroutine is announced."""
    global tracer
    if tracer is not None:
        raise RuntimeError("tracing is already enabled")
    t = Tracer()
    tracer = t
    cur: G | None = getattr(getcurrent(), "gp", None)
    st = t.here()
    if cur is not None and st is not t.glob:
        t.running(cur, st)
    for gp in list(sched.allgs.values()):
        if gp is not cur:
            t.known(gp, st)
    st.buf.append((monotonic_ns(), EV_GOMAXPROCS, sched.gomaxprocs, t.stack(_caller(3))))
    gc.callbacks.append(_gc_callback)
    _install(True)
    sched.tracing = True
    return t


def stop() -> Tracer | None:
    """End the session; returns it for a writer (None if none was on)."""
    global tracer
    t = tracer
    if t is None:
        return None
    sched.tracing = False
    _install(False)
    try:
        gc.callbacks.remove(_gc_callback)
    except ValueError:
        pass
    tracer = None
    t.end_ticks = monotonic_ns()
    return t


# ---------------------------------------------------------------------------
# Merging: Go's order1007 rule, then monotonic timestamps.


def _transition(ev: Event, curg: int) -> tuple[int, int, int, int, int]:
    """(goid, required seq or -1, required state, next seq or -1, next state);
    goid -1 when the event has no ordering requirement."""
    typ = ev[1]
    if typ == EV_GO_CREATE:
        return ev[2], 0, 0, 1, T_RUNNABLE
    if typ in (EV_GO_WAITING, EV_GO_IN_SYSCALL):
        return ev[2], 1, T_RUNNABLE, 2, T_WAITING
    if typ == EV_GO_START:
        return ev[2], ev[3], T_RUNNABLE, ev[3] + 1, T_RUNNING
    if typ in BLOCK_EVENTS or typ == EV_GO_SYSBLOCK:
        return curg, -1, T_RUNNING, -1, T_WAITING
    if typ in (EV_GO_SCHED, EV_GO_PREEMPT):
        return curg, -1, T_RUNNING, -1, T_RUNNABLE
    if typ in (EV_GO_UNBLOCK, EV_GO_SYSEXIT):
        return ev[2], ev[3], T_WAITING, ev[3] + 1, T_RUNNABLE
    return -1, 0, 0, 0, 0


def _curg_after(ev: Event, curg: int) -> int:
    """The parser's idea of the P's running goroutine after ev."""
    typ = ev[1]
    if typ == EV_GO_START:
        return int(ev[2])
    if typ in BLOCK_EVENTS or typ in (EV_GO_END, EV_GO_STOP, EV_GO_SCHED, EV_GO_PREEMPT):
        return 0
    if typ == EV_GO_SYSBLOCK:
        return 0
    return curg


def merge(t: Tracer) -> list[tuple[int, Event]]:
    """Every event as (pid, event) in one order Go's parser accepts, with
    timestamps made monotonic along it."""
    batches = [(pid, st.buf) for pid, st in sorted(t.ps.items()) if st.buf]
    if t.glob.buf:
        batches.append((GLOBAL_P, t.glob.buf))
    pos = [0] * len(batches)
    curgs = [0] * len(batches)
    gstate: dict[int, tuple[int, int]] = {}  # goid -> (seq, state)
    out: list[tuple[int, Event]] = []
    total = sum(len(b) for _, b in batches)
    while len(out) < total:
        best = -1
        best_ts = 0
        best_tr: tuple[int, int, int, int, int] | None = None
        for i, (_, buf) in enumerate(batches):
            if pos[i] >= len(buf):
                continue
            ev = buf[pos[i]]
            tr = _transition(ev, curgs[i])
            if tr[0] >= 0:
                seq, state = gstate.get(tr[0], (0, 0))
                if (tr[1] >= 0 and tr[1] != seq) or tr[2] != state:
                    continue
            if best < 0 or ev[0] < best_ts:
                best, best_ts, best_tr = i, ev[0], tr
        if best < 0:
            raise RuntimeError("gort trace: no consistent order of events (a runtime bug)")
        ev = batches[best][1][pos[best]]
        pos[best] += 1
        curgs[best] = _curg_after(ev, curgs[best])
        assert best_tr is not None
        if best_tr[0] >= 0:
            seq, _ = gstate.get(best_tr[0], (0, 0))
            gstate[best_tr[0]] = (seq if best_tr[3] < 0 else best_tr[3], best_tr[4])
        out.append((batches[best][0], ev))
    # Go's StopTrace deschedules the goroutines still running (the caller
    # with GoSched, the others by stopping the world). Without that end the
    # parser leaves their last GoStart unlinked, and `go tool trace`'s
    # viewer dereferences the missing link while splitting the trace.
    end = max([t.end_ticks or 0] + [ev[0] for _, ev in out[-1:]])
    out += [(batches[i][0], (end, EV_GO_SCHED, 0)) for i, g in enumerate(curgs) if g]
    return _monotonic(out)


def _monotonic(events: list[tuple[int, Event]]) -> list[tuple[int, Event]]:
    """Raise each timestamp above its predecessor's; a GoSysExit's
    real return time stays between the syscall's block and the exit."""
    last = 0
    sysblock: dict[int, int] = {}
    curg: dict[int, int] = {}
    fixed: list[tuple[int, Event]] = []
    for pid, ev in events:
        ts = ev[0] if ev[0] > last else last + 1  # strictly: one order, whoever sorts
        last = ts
        typ = ev[1]
        g = curg.get(pid, 0)
        if typ == EV_GO_SYSBLOCK:
            sysblock[g] = ts
        elif typ == EV_GO_IN_SYSCALL:
            sysblock[ev[2]] = ts
        if typ == EV_GO_SYSEXIT:
            real = min(max(ev[4], sysblock.get(ev[2], ts)), ts)
            ev = (ts, typ, ev[2], ev[3], real)
        elif ts != ev[0]:
            ev = (ts, *ev[1:])
        curg[pid] = _curg_after(ev, g)
        fixed.append((pid, ev))
    return fixed


# ---------------------------------------------------------------------------
# Go's format.


def _uvarint(out: bytearray, v: int) -> None:
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


def _event(out: bytearray, typ: int, args: list[int]) -> None:
    """One event: type byte, then inline args or a length and the args."""
    narg = len(args)
    if narg < 4:
        out.append(typ | (narg - 1) << 6)
        for a in args:
            _uvarint(out, a)
        return
    body = bytearray()
    for a in args:
        _uvarint(body, a)
    out.append(typ | 3 << 6)
    _uvarint(out, len(body))
    out += body


def encode_go(t: Tracer, events: list[tuple[int, Event]]) -> bytes:
    """The trace file: header, batches per P, strings, stacks, frequency."""
    out = bytearray(HEADER)
    bypid: dict[int, list[Event]] = {}
    for pid, ev in events:
        bypid.setdefault(pid, []).append(ev)
    for pid, evs in bypid.items():
        first = evs[0][0]
        out.append(EV_BATCH | 1 << 6)
        _uvarint(out, pid & 0xFFFFFFFFFFFFFFFF)
        _uvarint(out, first)
        last = first
        for ev in evs:
            ts = ev[0]
            typ = ev[1]
            args = [ts - last, *ev[2:]]
            last = ts
            if typ == EV_USER_LOG:
                value = ev[-1].encode()
                _event(out, typ, args[:-1])
                _uvarint(out, len(value))
                out += value
            else:
                _event(out, typ, args)
    for s, sid in t.strings.items():
        _string(out, sid, s)
    names: dict[str, int] = dict(t.strings)

    def sid_of(s: str) -> int:
        sid = names.get(s)
        if sid is None:
            sid = names[s] = len(names) + 1
            _string(out, sid, s)
        return sid

    for key, stkid in t.stacks.items():
        body = bytearray()
        _uvarint(body, stkid)
        _uvarint(body, len(key))
        for pc in key:
            fn, file, line = t.frames[pc - 1]
            _uvarint(body, pc)
            _uvarint(body, sid_of(fn))
            _uvarint(body, sid_of(file))
            _uvarint(body, line)
        out.append(EV_STACK | 3 << 6)
        _uvarint(out, len(body))
        out += body
    out.append(EV_FREQUENCY)
    _uvarint(out, TICKS_PER_SEC)
    return bytes(out)


def _string(out: bytearray, sid: int, s: str) -> None:
    data = s.encode() or b"?"
    out.append(EV_STRING)
    _uvarint(out, sid)
    _uvarint(out, len(data))
    out += data


def write(t: Tracer, dest: BinaryIO, fmt: str) -> int:
    """Merge, encode in fmt ("go" or "json") and write; returns bytes written."""
    from . import tracejson

    events = merge(t)
    data = encode_go(t, events) if fmt == "go" else tracejson.encode(t, events)
    dest.write(data)
    dest.flush()
    return len(data)


Hook = Callable[..., None]
