"""The network poller, platform-independent part (mirrors runtime/netpoll.go).

A ``PollDesc`` per descriptor holds two wait slots, ``rg`` for readers and
``wg`` for writers. Each slot is Go's binary semaphore:

* ``None`` (pdNil): nobody waits and no readiness is pending;
* ``PD_READY`` (pdReady): the backend saw the descriptor become ready
  while nobody waited; the next waiter consumes it and retries its syscall;
* a ``G``: that goroutine is parked in ``IO wait`` until readiness, a
  deadline or a close.

Go keeps a single G per slot because its fdMutex lets one reader and one
writer at a time reach the slot. gort keeps the slot but lets further
waiters of the same direction queue behind it (``rq``/``wq``), all woken
together: each retries its syscall and the losers park again. That keeps
concurrent ``accept`` loops on one listener (a common pattern) correct
without a second lock on every read's fast path.

Unlike Go's CAS loops, state changes here happen under ``Poller.lock``, one
lock for every descriptor: on a GIL build a lock round trip is about 100 ns
and it is held for a few bytecodes, while a CAS-free scheme would have to
reason about every interleaving of bytecodes between the Ms, sysmon and the
M blocked in the backend. The fast path of a read or write never takes it:
the FD layer (gort.internal.poll) tries the syscall first and comes here
only on EAGAIN.

A woken waiter finds its slot empty (``None``) rather than ``PD_READY`` as
in Go: it retries the syscall anyway, so the marker would only cost it a
lock round trip to clear. The price is one extra EAGAIN when a second edge
arrives before the woken G runs.

Each direction is a ``PollSide`` (Go's rg/rd/rseq/rt, wg/wd/wseq/wt).
Deadlines are runtime timers (time.py) on the P of the goroutine that sets
them. A side's deadline ``d`` is 0 (none), a ``monotonic()`` time, or -1
(expired: every wait fails at once with ``POLL_ERR_TIMEOUT``); ``seq``
counts deadline changes so that a timer which fires after its deadline was
moved does nothing.

``poll_wait_any`` parks one goroutine on several descriptors at once (what
gort.monkey's select, poll, epoll and selectors wait with; Go has no such
call, its runtime never selects over descriptors). The goroutine is queued
on each side as an ``_AnyWait``, taken once by the first event, close or
its own deadline timer; descriptors nobody registered are registered for
the call only.

The scheduler calls the poller where Go does (proc.py findrunnable, stopm;
sysmon.py) through the hooks on ``sched``, installed when the first
descriptor of a run is opened; ``Poller.close`` (a close hook of the run)
closes every descriptor still open and the backend's own.
"""

from __future__ import annotations

import os
import select as _select_mod
import threading
from collections.abc import Callable, Iterable
from time import monotonic
from typing import Any, Protocol

from .panic import outside
from .proc import getg, ready_remote, schedule
from .runtime2 import G_WAITING, WAIT_IO, G, M, P, sched
from .time import TimerState, sleep_delay

# pollDesc error codes (netpoll.go pollNoError ...).
POLL_NO_ERROR = 0
POLL_ERR_CLOSING = 1
POLL_ERR_TIMEOUT = 2

READ = 0
WRITE = 1


class _Ready:
    """The pdReady marker: readiness seen while nobody waited."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "pdReady"


PD_READY: Any = _Ready()


class Backend(Protocol):
    """A platform's poller (netpoll_epoll.py, netpoll_selectors.py).

    ``wait`` returns ``(fd, mask)`` pairs; ``rmask``/``wmask`` say which
    bits of a mask make a descriptor readable or writable (errors and
    hang-ups are in both, so that the waiter's syscall reports them).
    A level-triggered backend sets ``needs_arm`` and is told before each
    park which direction to watch (Go's netpollarm).
    """

    rmask: int
    wmask: int
    needs_arm: bool
    breakfd: int

    def open(self, fd: int) -> None: ...
    def close(self, fd: int) -> None: ...
    def arm(self, fd: int, mode: int) -> None: ...
    def wait(self, delay: float) -> list[tuple[int, int]]: ...
    def wakeup(self) -> None: ...
    def drain(self) -> None: ...
    def shutdown(self) -> None: ...


class PollSide:
    """One direction of a pollDesc: Go's rg/rd/rseq/rt, or wg/wd/wseq/wt.

    Every field is written with ``Poller.lock`` held; ``err`` is read
    without it on the FD layer's fast path (a stale read only delays the
    error to the next call, as in Go).
    """

    __slots__ = ("d", "err", "g", "q", "seq", "t")

    def __init__(self) -> None:
        self.g: Any = None  # None | PD_READY | G
        self.q: list[Any] | None = None  # more waiters (G | _AnyWait) parked behind g
        self.d = 0.0  # deadline: 0 none, -1 expired, else monotonic()
        self.seq = 0  # bumped when d changes: a stale timer does nothing
        self.t: _DeadlineTimer | None = None
        self.err = POLL_NO_ERROR  # netpollcheckerr for this direction, kept current


class PollDesc:
    """One descriptor's wait slots and deadlines (netpoll.go pollDesc).

    ``temp`` marks a registration made only for the duration of
    ``poll_wait_any`` calls (a descriptor nobody owns: a pipe handed to
    select.select); ``borrowed`` counts those calls. An owner's poll_open
    adopts such a registration; the last borrower unregisters one that is
    still temporary. Both under Poller.lock.
    """

    __slots__ = ("borrowed", "closing", "fd", "on_close", "r", "temp", "w")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.closing = False  # Poller.lock
        self.temp = False
        self.borrowed = 0
        self.r = PollSide()
        self.w = PollSide()
        # Releases the descriptor at the run's end if its owner never did.
        self.on_close: Callable[[], None] | None = None

    def side(self, mode: int) -> PollSide:
        return self.w if mode else self.r


class Poller:
    """The poller of one run: the backend, the open descriptors, the waiters."""

    def __init__(self, backend: Backend) -> None:
        self.lock = threading.Lock()
        self.backend = backend
        self.fds: dict[int, PollDesc] = {}  # lock: the open descriptors
        self.nwait = 0  # lock: goroutines parked in IO wait (netpollWaiters)
        self.closed = False


_initlock = threading.Lock()


def _new_backend() -> Backend:
    """The platform's backend; GORT_NETPOLL=selectors forces the fallback."""
    if os.environ.get("GORT_NETPOLL") != "selectors":
        try:
            from .netpoll_epoll import EpollBackend

            return EpollBackend()
        except (ImportError, AttributeError):
            pass  # no epoll on this platform
    from .netpoll_selectors import SelectorsBackend

    return SelectorsBackend()


def netpollinit() -> Poller:
    """The run's poller, made on first use (netpollGenericInit)."""
    p: Poller | None = sched.poller
    if p is not None:
        return p
    with _initlock:
        p = sched.poller
        if p is not None:
            return p
        if not sched.running or sched.exiting:
            raise outside("gort.net")
        p = Poller(_new_backend())
        sched.lastpoll = monotonic()
        sched.netpoll = netpoll
        sched.netpoll_waiters = netpoll_any_waiters
        sched.netpoll_block = netpoll_block
        sched.netpoll_break = p.backend.wakeup
        sched.close_hooks.append(_closer(p))
        sched.poller = p
    return p


def _closer(p: Poller) -> Callable[[], None]:
    return lambda: poller_close(p)


def poller_close(p: Poller) -> None:
    """The run is over: close what its goroutines left open, then the backend."""
    with p.lock:
        p.closed = True
        pds = list(p.fds.values())
        p.fds.clear()
    for pd in pds:
        pd.closing = True
        f = pd.on_close
        pd.on_close = None
        if f is not None:
            try:
                f()
            except OSError:
                pass
    p.backend.shutdown()


# ---------------------------------------------------------------------------
# Descriptors (poll_runtime_pollOpen, pollClose).


def poll_open(fd: int) -> PollDesc:
    """Register fd with the poller (edge-triggered, once for its life).

    Raises OSError when fd cannot be polled (a regular file: EPERM).
    """
    p = netpollinit()
    pd = PollDesc(fd)
    with p.lock:
        if p.closed:
            raise outside("gort.net")
        old = p.fds.get(fd)
        if old is not None and old.temp and not old.closing:
            old.temp = False  # borrowed by poll_wait_any: now it has an owner
            return old
        p.backend.open(fd)
        p.fds[fd] = pd
    return pd


def poll_close(pd: PollDesc) -> None:
    """Unregister pd before its descriptor is closed. Call after evict."""
    p: Poller | None = sched.poller
    if p is None:
        return
    with p.lock:
        if p.fds.get(pd.fd) is pd:
            del p.fds[pd.fd]
            try:
                p.backend.close(pd.fd)
            except OSError:
                pass
    pd.on_close = None


def poll_evict(pd: PollDesc) -> None:
    """Close is under way: every waiter wakes and gets POLL_ERR_CLOSING
    (poll_runtime_pollUnblock)."""
    p: Poller | None = sched.poller
    if p is None:
        return
    gs: list[G] = []
    with p.lock:
        if pd.closing:
            return
        pd.closing = True
        for side in (pd.r, pd.w):
            side.err = POLL_ERR_CLOSING
            side.seq += 1
            if side.t is not None:
                side.t.stop()
            _unblock(p, side, False, gs)
    _ready_all(gs)


# ---------------------------------------------------------------------------
# Waiting (poll_runtime_pollWait, netpollblock, netpollunblock).


def poll_wait(pd: PollDesc, mode: int, call: str) -> int:
    """Park the calling goroutine until pd is ready for mode.

    Returns POLL_NO_ERROR when the caller should retry its syscall, or the
    error that ended the wait. Never raises but for a park left by an
    exception (GreenletExit at the run's end), which first withdraws the
    goroutine from pd.
    """
    gp = getg(call)
    p: Poller = sched.poller
    side = pd.w if mode else pd.r
    with p.lock:
        if side.err:
            return side.err
        slot = side.g
        if slot is PD_READY:
            side.g = None
            return POLL_NO_ERROR
        if slot is None:
            side.g = gp
        elif side.q is None:
            side.q = [gp]
        else:
            side.q.append(gp)
        p.nwait += 1
        # Set before a waker can see gp: the waker's ready makes it runnable.
        gp.status = G_WAITING
        gp.waitreason = WAIT_IO
        if p.backend.needs_arm:
            p.backend.arm(pd.fd, mode)
    try:
        schedule(gp, gp.p)
    except BaseException:
        _withdraw(p, side, gp)
        raise
    return side.err


def _withdraw(p: Poller, side: PollSide, gp: G) -> None:
    """gp's park was left by an exception: take it out of side's slots."""
    with p.lock:
        if _remove(side, gp):
            p.nwait -= 1


def _remove(side: PollSide, w: Any) -> bool:
    """Take waiter w out of side (Poller.lock held); the first queued
    waiter moves up into the slot, which _unblock reads first."""
    if side.g is w:
        q = side.q
        side.g = q.pop(0) if q else None
        return True
    if side.q is not None and w in side.q:
        side.q.remove(w)
        return True
    return False


def _unblock(p: Poller, side: PollSide, ioready: bool, gs: list[G]) -> None:
    """Move the goroutines waiting on side to gs (netpollunblock).

    With nobody waiting, ioready leaves PD_READY for the next waiter.
    Poller.lock must be held.
    """
    g = side.g
    if g is None:
        if ioready:
            side.g = PD_READY
        return
    if g is PD_READY:
        return
    side.g = None
    more = side.q
    if more is None and g.__class__ is not _AnyWait:
        gs.append(g)  # the common case: one goroutine
        p.nwait -= 1
        return
    side.q = None
    n = len(gs)
    for w in (g, *more) if more else (g,):
        if w.__class__ is _AnyWait:
            w = w.take()
            if w is None:
                continue  # woken by another descriptor: withdrawing itself
        gs.append(w)
        p.nwait -= 1
    if ioready and len(gs) == n:
        side.g = PD_READY


def _ready_all(gs: list[G]) -> None:
    """Make woken waiters runnable at the tail of their home P's queue, in
    order, from any thread: inject is that, and wakes the P's M if it sleeps.
    (ready lost its next=False when timers got their own readytimer.)"""
    for gp in gs:
        ready_remote(gp)


# ---------------------------------------------------------------------------
# Waiting on several descriptors at once (select.select, poll and epoll
# objects, selectors: what gort.monkey parks on).


class _AnyWait(TimerState):
    """A goroutine parked on several pollDesc sides at once, and its deadline.

    It sits in each side's slot or queue in place of a G. The first event,
    close or its own timer ``take``s it (``done``, under Poller.lock), so
    one goroutine is readied once; the other sides skip it until the
    goroutine, running again, withdraws from all of them.
    """

    __slots__ = ("done", "g", "poller", "timedout")
    _weak = False  # the heap holds it: nothing else must for the timeout to fire

    def __init__(self, g: G, poller: Poller) -> None:
        super().__init__()
        self.g = g
        self.poller = poller
        self.done = False
        self.timedout = False

    def take(self) -> G | None:
        """The goroutine to ready, or None if already woken (Poller.lock)."""
        if self.done:
            return None
        self.done = True
        return self.g

    def _fire(self, now: float) -> None:
        p = self.poller
        with p.lock:
            g = self.take()
            if g is None:
                return
            self.timedout = True
            p.nwait -= 1
        ready_remote(g)


_LEVEL = (_select_mod.POLLIN, _select_mod.POLLOUT)  # by mode


def level_ready(fds: dict[int, int]) -> bool:
    """Whether any fd is ready now for its modes (bit 1 << mode), asked of
    the kernel without waiting: poll(2) reports errors, hang-ups and closed
    descriptors as ready too, so the caller's own call sees them."""
    po = _new_level_poll()
    for fd, modes in fds.items():
        po.register(fd, (modes & 1 and _LEVEL[0]) | (modes & 2 and _LEVEL[1]))
    return bool(po.poll(0))


_new_level_poll = _select_mod.poll  # bound at import: gort.monkey patches select.poll


def poll_wait_any(pairs: Iterable[tuple[int, int]], deadline: float | None, call: str) -> bool:
    """Park the calling goroutine until one of the (fd, mode) pairs may be
    ready, or until deadline (a monotonic() time; None: no deadline).

    Returns False when the deadline passed, True when the caller should
    look again (like a woken single waiter, it may find nothing ready).
    Descriptors already registered (a gort.net conn, a patched socket) are
    waited on through their owner's pollDesc; others are registered for the
    duration of the call (``PollDesc.temp``). Readiness is checked with the
    kernel under Poller.lock after every slot is taken: an event the
    backend reports later wakes this goroutine, and one reported earlier
    shows in the check, so no edge is lost whatever the owner consumed.
    A pdReady found on a side is left for its owner when the check sees the
    descriptor ready, and dropped as stale otherwise.

    Raises OSError when the poller refuses a descriptor (EPERM for a
    regular file), having registered nothing; leaves nothing behind when
    the park is left by an exception.
    """
    gp = getg(call)
    p = netpollinit()
    fds: dict[int, int] = {}
    for fd, mode in pairs:
        fds[fd] = fds.get(fd, 0) | (1 << mode)
    if deadline is not None and deadline <= monotonic():
        return False
    w = _AnyWait(gp, p)
    pds: list[PollDesc] = []
    sides: list[PollSide] = []
    with p.lock:
        if p.closed:
            raise outside(call)
        try:
            if not _enqueue_any(p, w, fds, pds, sides):
                _release(p, w, pds, sides)
                return True
        except BaseException:
            _release(p, w, pds, sides)
            raise
        p.nwait += 1
        gp.status = G_WAITING
        gp.waitreason = WAIT_IO
    try:
        if deadline is not None:
            w._arm(gp.p, deadline - monotonic())
        schedule(gp, gp.p)
    finally:
        if deadline is not None:
            w.stop()
        with p.lock:
            if not w.done:  # left by an exception: never taken
                w.done = True
                p.nwait -= 1
            _release(p, w, pds, sides)
    return not w.timedout


def _enqueue_any(
    p: Poller, w: _AnyWait, fds: dict[int, int], pds: list[PollDesc], sides: list[PollSide]
) -> bool:
    """Put w on every side of fds (Poller.lock held), borrowing registrations
    into pds; False, with w queued nowhere yet, when something is ready now."""
    for fd in fds:
        pd = _borrow(p, fd)
        pds.append(pd)
        if pd.closing:
            return False  # its owner is closing it: the caller's call will tell
    if level_ready(fds):
        return False
    be = p.backend
    for pd in pds:
        modes = fds[pd.fd]
        for mode in (READ, WRITE):
            if not modes & (1 << mode):
                continue
            side = pd.side(mode)
            if side.g is PD_READY:
                side.g = None  # stale: the check above saw nothing ready
            if side.g is None:
                side.g = w
            elif side.q is None:
                side.q = [w]
            else:
                side.q.append(w)
            sides.append(side)
            if be.needs_arm:
                be.arm(pd.fd, mode)
    return True


def _borrow(p: Poller, fd: int) -> PollDesc:
    """fd's pollDesc, registered temporarily when nobody owns it (lock held)."""
    pd = p.fds.get(fd)
    if pd is None:
        pd = PollDesc(fd)
        p.backend.open(fd)  # OSError: EPERM for a regular file, EBADF
        pd.temp = True
        p.fds[fd] = pd
    pd.borrowed += 1
    return pd


def _release(p: Poller, w: _AnyWait, pds: list[PollDesc], sides: list[PollSide]) -> None:
    """Withdraw w from sides and give back the registrations (lock held)."""
    for side in sides:
        _remove(side, w)
    for pd in pds:
        pd.borrowed -= 1
        if pd.temp and not pd.borrowed and p.fds.get(pd.fd) is pd:
            del p.fds[pd.fd]
            try:
                p.backend.close(pd.fd)
            except OSError:
                pass  # closed under us: the kernel dropped it already
    pds.clear()
    sides.clear()


def netpoll_any_waiters() -> bool:
    p: Poller | None = sched.poller
    return p is not None and p.nwait > 0


# ---------------------------------------------------------------------------
# Polling: what the scheduler calls (netpoll, netpollBreak).


def netpoll(delay: float) -> list[G]:
    """Goroutines made runnable by I/O: delay 0 polls, < 0 blocks, > 0 waits
    up to delay seconds. A non-blocking poll returns nothing while an M is
    blocked in the backend: that M delivers the events."""
    if delay == 0 and sched.pollm is not None:
        return []
    p: Poller | None = sched.poller
    if p is None or p.closed:
        return []
    return _poll(p, delay)


def _poll(p: Poller, delay: float) -> list[G]:
    be = p.backend
    events = be.wait(delay)
    sched.lastpoll = monotonic()
    if not events:
        return []
    gs: list[G] = []
    fds = p.fds
    rmask = be.rmask
    wmask = be.wmask
    with p.lock:
        for fd, ev in events:
            pd = fds.get(fd)
            if pd is None:
                if fd == be.breakfd and delay != 0:
                    be.drain()  # only a blocking poll consumes a break (as Go)
                continue
            if ev & rmask:
                _unblock(p, pd.r, True, gs)
            if ev & wmask:
                w = pd.w
                if w.g is None:
                    w.g = PD_READY  # the common case: edge-triggered events carry EPOLLOUT
                elif w.g is not PD_READY:
                    _unblock(p, w, True, gs)
    return gs


def netpoll_block(m: M, pp: P) -> bool:
    """stopm's sleep, in the poller: the last M to go idle blocks in the
    backend until pp's next timer (findRunnable's blocking netpoll).

    Returns False when another M is already there (the caller sleeps on its
    note). Wakers read ``sched.pollm`` after queueing work (proc.notewakeup),
    so announcing it *before* the re-check below keeps the delicate dance.
    """
    p: Poller | None = sched.poller
    if p is None or p.closed:
        return False
    with sched.lock:
        if sched.pollm is not None or sched.exiting:
            return False
        sched.pollm = m
        sched.lastpoll = 0.0
    gs: list[G] = []
    try:
        if pp.runnext is None and not pp.runq and not sched.runq and not sched.exiting:
            gs = _poll(p, sleep_delay(pp))
    finally:
        sched.pollm = None
        sched.lastpoll = monotonic()
    m.park.clear()  # wake-ups posted while polling: the caller re-checks anyway
    for gp in gs:
        ready_remote(gp)
    return True


# ---------------------------------------------------------------------------
# Deadlines (poll_runtime_pollSetDeadline, netpolldeadlineimpl).


class _DeadlineTimer(TimerState):
    """A pollDesc's read or write deadline timer; ``seq`` is its side's seq
    when it was armed."""

    __slots__ = ("seq", "side")

    def __init__(self, side: PollSide) -> None:
        super().__init__()
        self.side = side
        self.seq = 0

    def _fire(self, now: float) -> None:
        p: Poller | None = sched.poller
        if p is None:
            return
        side = self.side
        gs: list[G] = []
        with p.lock:
            if side.seq != self.seq or side.err == POLL_ERR_CLOSING:
                return
            side.d = -1.0
            side.err = POLL_ERR_TIMEOUT
            _unblock(p, side, False, gs)
        _ready_all(gs)


def poll_set_deadline(pd: PollDesc, t: float | None, modes: tuple[int, ...], call: str) -> None:
    """Set (t) or clear (None) pd's deadline for the given modes.

    A deadline in the past fails waits at once and wakes current waiters;
    a moved deadline re-arms the timer on the calling goroutine's P, and a
    waiter parked meanwhile stays parked until the new time.
    """
    gp = getg(call)
    p = netpollinit()
    now = monotonic()
    d = 0.0 if t is None else (t if t > now else -1.0)
    gs: list[G] = []
    with p.lock:
        if pd.closing:
            return
        for mode in modes:
            side = pd.side(mode)
            side.d = d
            side.seq += 1
            side.err = POLL_ERR_TIMEOUT if d < 0 else POLL_NO_ERROR
            timer = side.t
            if timer is None and d > 0:
                timer = side.t = _DeadlineTimer(side)
            if timer is not None:
                timer.stop()
                if d > 0:
                    timer.seq = side.seq
                    timer._arm(gp.p, d - now)
            if d < 0:
                _unblock(p, side, False, gs)
    _ready_all(gs)
