"""The runtime's core structures: G, M, P, sudog, note and sched.

Mirrors runtime/runtime2.go. Every other runtime module imports from here;
this module imports nothing from the runtime, so it is the place for the
types, the constants and the one mutable global, ``sched``.

Ownership, in the words Go's comments use:

* A G that has started runs only on its home P (``g.p``), which is driven by
  one M (one OS thread) for the P's whole life: a greenlet cannot move
  between threads. A G that has not started yet (``g.glet is None``) may run
  on any P; those are the Gs that idle Ps steal.
* ``P.runq`` is a deque. Its owner M appends and pops; other threads only
  append (a remote ``ready``) or pop from the head (stealing), and each of
  those is one atomic deque operation, so no G is ever lost or run twice.
* ``P.runnext`` is written only by the owner M.
* Fields of ``Sched`` marked "sched.lock" are written with ``sched.lock`` held.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections import deque
from collections.abc import Callable
from contextvars import Context
from types import CodeType
from typing import Any

from greenlet import greenlet

# G status (runtime2.go). _Gidle is a G that has no greenlet yet.
G_IDLE = 0
G_RUNNABLE = 1
G_RUNNING = 2
G_SYSCALL = 3
G_WAITING = 4
G_DEAD = 6

GSTATUS_STRINGS = {
    G_IDLE: "idle",
    G_RUNNABLE: "runnable",
    G_RUNNING: "running",
    G_SYSCALL: "syscall",
    G_WAITING: "waiting",
    G_DEAD: "dead",
}

# P status.
P_IDLE = 0
P_RUNNING = 1
P_DEAD = 3

# Wait reasons, verbatim from runtime2.go's waitReasonStrings: a Go
# programmer reads gort's dumps with the words they already know.
WAIT_CHAN_RECEIVE = "chan receive"
WAIT_CHAN_SEND = "chan send"
WAIT_CHAN_RECEIVE_NIL = "chan receive (nil chan)"
WAIT_CHAN_SEND_NIL = "chan send (nil chan)"
WAIT_SELECT = "select"
WAIT_SELECT_NO_CASES = "select (no cases)"
WAIT_SLEEP = "sleep"
WAIT_IO = "IO wait"
WAIT_SEMACQUIRE = "semacquire"
WAIT_PANIC = "panicwait"

RUNQ_SIZE = 256  # runtime2.go p.runq [256]guintptr
GLOBAL_RUNQ_CHECK_TICK = 61  # proc.go findRunnable: schedtick%61
STEAL_TRIES = 4  # proc.go stealWork
FORCE_PREEMPT_NS = 10_000_000  # proc.go forcePreemptNS: the time slice
MAX_MCOUNT = 10_000  # proc.go sched.maxmcount


class GStack(greenlet):  # type: ignore[misc]
    """The greenlet a goroutine runs on; ``gp`` is the G it runs now.

    Greenlets are recycled (Go's gfput/gfget keep a G's stack), so one
    GStack runs many goroutines in turn, each in a fresh Context.
    """

    __slots__ = ("gp",)


class Sudog:
    """A G waiting in a channel's queue (runtime2.go sudog).

    A plain send or receive uses the G's own cached sudog (a G waits on one
    channel at a time); a select makes one per case, all sharing ``token``:
    a one-element list whose atomic ``pop`` is Go's selectDone CAS, so
    exactly one waker wins a select that waits on several channels.

    A select's sudog whose token is gone (another case won) is dead: every
    waker skips it, and its select unlinks it or leaves it for the channel's
    next compaction (chan.py ``unqueue``).
    """

    __slots__ = ("c", "elem", "g", "index", "success", "token")

    def __init__(self, g: G) -> None:
        self.g = g
        self.c: Any = None  # what a semaphore waiter waits on (sema.py)
        self.elem: Any = None
        self.success = False
        self.token: list[bool] | None = None
        self.index = 0


# Where a goroutine was created: (code, line, the module's globals, creator's goid).
Created = tuple[CodeType, int, dict[str, Any], int]


class G:
    """A goroutine (runtime2.go g)."""

    # Set before they are read, so not initialised (every store costs on
    # the spawn path): select's winning sudog.
    param: Any
    waitreason: str  # meaningful while status is G_WAITING
    # When sysmon first saw it waiting (traceback.stamp_waiting), 0.0 until
    # then; schedule() resets it at every park. For dumps' ", N minutes".
    waitsince: float

    __slots__ = (
        "args",
        "created",
        "ctx",
        "fn",
        "glet",
        "goid",
        "kwargs",
        "p",
        "param",
        "status",
        "sudog",
        "waitreason",
        "waitsince",
    )

    def __init__(
        self,
        goid: int,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        ctx: Context,
        created: Created | None,
    ) -> None:
        self.goid = goid
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.ctx = ctx
        self.status = G_RUNNABLE
        self.glet: GStack | None = None  # None until the G first runs
        self.p: P = None  # type: ignore[assignment]  # home P, set when the G first runs
        self.sudog: Sudog | None = None
        self.created = created


class Note:
    """A one-shot wake-up (runtime's note): a binary semaphore.

    ``wakeup`` before ``sleep`` is remembered, so the sleeper that announced
    itself and the waker that saw the announcement cannot miss each other.
    Spurious returns are possible; sleepers re-check their condition.
    """

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()

    def wakeup(self) -> None:
        try:
            self._lock.release()
        except RuntimeError:  # already signalled
            pass

    def sleep(self, timeout: float = -1) -> None:
        self._lock.acquire(True, timeout)

    def clear(self) -> None:
        self._lock.acquire(False)


class M:
    """An OS thread (runtime2.go m). M0 is the thread that called run."""

    __slots__ = (
        "g0",
        "gen",
        "id",
        "ident",
        "p",
        "park",
        "parked",
        "thread",
    )

    def __init__(self, mid: int) -> None:
        self.id = mid
        self.gen = 0  # sched.generation of the run it belongs to (set by newm)
        self.g0: greenlet = None  # the scheduler loop's greenlet, set by mstart
        self.p: P | None = None
        self.park = Note()
        # Written by this M only: True from just before its last look at
        # the queues until it wakes (stopm). Read by any thread that queues
        # work for it (inject, wakep), which then posts ``park``. The
        # handshake is Dekker's: the sleeper stores parked, then loads the
        # queues; a waker stores into a queue, then loads parked. It needs
        # those stores to be seen in program order by the other thread:
        # under the GIL every bytecode is sequentially consistent, and the
        # queue stores are single deque operations, atomic under the GIL.
        # A free-threaded build (untested) would rely on deque's internal
        # lock and on attribute stores not being reordered across it.
        self.parked = False
        self.thread: threading.Thread | None = None
        # The thread's id while its scheduler loop runs, else 0. Written by
        # mstart on this M's thread, reset under sched.lock when it ends;
        # read without a lock (sysmon, dumps, ready's "am I home" test).
        self.ident = 0


class P:
    """A processor (runtime2.go p): the right to run goroutines."""

    __slots__ = (
        "gfree",
        "id",
        "m",
        "mcache",
        "preempt",
        "preempt_async",
        "runnext",
        "runq",
        "schedtick",
        "status",
        "switches",
        "syscalltick",
        "sysmontick",
        "sysmonwhen",
        "timerlast",
        "timers",
        "timers_scan",
        "timers_stale",
        "timerwoken",
    )

    def __init__(self, pid: int) -> None:
        self.id = pid
        # P_RUNNING or P_DEAD, written under sched.lock by procresize (on
        # the M that calls gomaxprocs); read without a lock by the owner M
        # (a stale read only delays retiring by one round) and by wakep.
        self.status = P_IDLE
        # The M driving this P: set with sched.lock held by newm (startm,
        # procresize), cleared under sched.lock when a retired P's M ends
        # (_retire). Read without a lock; never changes while its M runs.
        self.m: M = None  # type: ignore[assignment]  # set right after creation
        self.runq: deque[G] = deque()
        self.runnext: G | None = None  # written only by the owner M
        self.schedtick = 0  # incremented on every schedule that is not a runnext hand-off
        self.syscalltick = 0
        self.switches = 0  # every time a G gives up this P (blocking detector)
        self.sysmontick = -1  # sysmon's last sighting of schedtick ...
        self.sysmonwhen = 0.0  # ... and when it first saw that value
        # Set by sysmon (retake) and by _exit_locked (under sched.lock);
        # cleared by the owner M when it honours it. A lost clear or set
        # costs one extra or one missed yield, never correctness.
        self.preempt = False  # the time slice is used up; skip runnext once
        self.preempt_async = False  # sysmon: M0's signal handler may yield the G
        self.gfree: list[GStack] = []  # idle greenlets of finished goroutines
        self.timers: list[Any] = []  # the timer heap (time.py); owner M only
        # Stopped timers' entries still in the heap: bumped by whoever stops a
        # timer (under time._tlock when several Ms run), reset by the owner M
        # in clean. A heuristic count (when to rebuild), so a race only
        # moves the rebuild.
        self.timers_stale = 0
        self.mcache: Any = None  # malloc's per-P cache, made on first use; owner M only
        self.timers_scan = 64  # heap length at which pushes scan it for dead entries
        self.timerwoken: list[G] = []  # Gs the running checktimers readied (owner M only)
        self.timerlast: G | None = None  # the last G checktimers put at runq's head


def _no_waiters() -> bool:
    return False


_generations = itertools.count(1)

# Held by M0's thread from run's start to the end of teardown. While
# ``sched.multi`` is false M0 is the only M, so a channel operation on a
# thread that does not own it comes from a thread that is not an M
# (cgocall.py). ``m0owned()`` (the lock's bound ``_is_owned``) is the
# cheapest "which thread is this" CPython offers: it allocates nothing, about
# 280 instructions a test in place against 800 for ``threading.get_ident()
# != ident`` (callgrind, CPython 3.11).
M0LOCK = threading.RLock()
m0owned: Callable[[], bool] = M0LOCK._is_owned  # type: ignore[attr-defined]


class Sched:
    """Global scheduler state (runtime2.go schedt)."""

    def __init__(self) -> None:
        # Which run this is: a helper thread left inside a blocking call
        # when its run ended must not touch the next run's counters.
        self.generation = next(_generations)
        self.lock = threading.Lock()
        self.runq: deque[G] = deque()  # global run queue; append/popleft are atomic
        self.allp: list[P] = []
        self.allm: list[M] = []
        self.allgs: dict[int, G] = {}
        self.goidgen = itertools.count(1)
        # The runtime's own random source (Go's cheaprand): select's poll
        # order, the stealing order. Private, so that user code's
        # random.seed neither fixes select's choices nor loses numbers to it;
        # the one place a seedable scheduler seeds. Its methods are atomic.
        self.rand = random.Random()
        self.nmidle = 0  # sched.lock: Ms sleeping in stopm
        self.nsyscall = 0  # sched.lock: calls in flight on helper Ms
        self.gomaxprocs = 1
        # Channel operations take their general path: more than one M runs
        # goroutines (so they lock), or sysmon marked a P for preemption.
        # Written by set_multi under sched.lock (mcount changes), set True by
        # sysmon's preemptone, and set False by preemptcheck on the only M
        # (no other M exists to race with it then). Read without a lock on
        # every channel operation.
        self.multi = False
        # The execution tracer is on (trace.py): every hook site tests this.
        self.tracing = False
        # The program is over; every M leaves its loop. Set once, under
        # sched.lock, by _exit_locked (with exit_kind and exit_value); read
        # without a lock everywhere (a late read only delays noticing).
        self.exiting = False
        self.exit_kind = ""  # "return", "panic", "deadlock", "exit"
        self.exit_value: Any = None
        self.starttime = 0.0
        self.m0: M | None = None
        # Threads that are not Ms and made channel operations in this run
        # (cgocall.py; each adds itself, a single dict store). While one of
        # them lives it may wake a goroutine: checkdead reports no deadlock,
        # as Go counts the extra M a cgo callback holds.
        self.cgothreads: dict[int, threading.Thread] = {}
        self.sysmon: Any = None
        self.syscalls: Any = None
        self.debug: Any = None
        self.panicking = False
        # goids thrown GreenletExit at the end of the run (each by its own M:
        # set.add is atomic); a second attempt to run abandons the goroutine.
        self.unwound: set[int] = set()
        self.signals: Any = None  # sigqueue.SigState, set by schedinit
        self.sysmonwait = False  # sysmon sleeps until an M wakes up
        self.running = False  # between run()'s start and its teardown
        self.mcount = 0  # sched.lock: Ms running a scheduler loop
        self.on_exit: Callable[[], None] | None = None  # wakes what sleeps outside Ms
        # Sees the text of a panic or fatal error before it is printed; True
        # means it was reported elsewhere (the pytest plugin puts it in the
        # test's report) and is not written to stderr.
        self.on_crash: Callable[[str], bool] | None = None
        # gort.run(seed=)/GORT_SCHEDSEED: scheduling choices come from rand
        # (proc.py seedsched); None keeps the ordinary queue order.
        self.seed: int | None = None
        # synctest's bubbles (runtime/synctest.py), and what an M with nothing
        # to run calls before it sleeps: it advances their clocks. True means
        # it made a G runnable. Set by the first synctest.run of the run.
        self.bubbles: list[Any] = []
        self.idle_hook: Callable[[P], bool] | None = None
        # The netpoller's hooks (Go's netpoll(delay), netpollAnyWaiters):
        # findrunnable polls without blocking, checkdead asks whether any
        # goroutine waits for I/O. None and "no waiters" until a poller exists.
        self.netpoll: Callable[[float], list[G]] | None = None
        self.netpoll_waiters: Callable[[], bool] = _no_waiters
        # The rest of the poller's hooks (netpoll.py installs them with the
        # poller): stopm's blocking poll, netpollBreak, the poller itself.
        self.netpoll_block: Callable[[M, P], bool] | None = None
        self.netpoll_break: Callable[[], None] | None = None
        self.poller: Any = None
        self.pollm: M | None = None  # the M blocked in the poller (Go: lastpoll == 0)
        self.lastpoll = 0.0  # when the poller was last polled (sysmon polls after 10 ms)
        # checkdead asks each whether something outside the Ms (a plain OS
        # thread holding a lock a goroutine waits for: gort.monkey) may still
        # wake a goroutine. Called with sched.lock held: must not block.
        self.may_wake: list[Callable[[], bool]] = []
        self.stop_hooks: list[Callable[[], None]] = []  # stop sysmon, helpers...
        self.close_hooks: list[Callable[[], None]] = []  # release descriptors, handlers


sched = Sched()
"""The running program's scheduler state; replaced by every run()."""
