"""Channels (mirrors runtime/chan.go).

Invariants (chan.go's header, unchanged):

* At least one of ``sendq`` and ``recvq`` is empty, except for sudogs of
  selects that another case already completed (dead: wakers skip them;
  their select removes them, at once or in the queue's next compaction).
* For buffered channels: a non-empty buffer implies an empty ``recvq``; a
  buffer with room implies an empty ``sendq``.

A send to a waiting receiver hands the value to it directly; a receive from
a full buffer with a waiting sender takes the head and moves the sender's
value to the tail, so buffered channels stay FIFO.

Locking: ``c.lock`` guards the channel while more than one M runs
goroutines (``sched.multi``, which sysmon also sets to route operations
through ``preemptcheck`` when it marks a P for preemption). With one M,
every channel operation runs on that M's thread and is never interrupted
inside the runtime (preemption happens only at async safe points, outside
gort's code), so the lock is skipped: a lock round trip costs about as
much as the rest of a send. Each operation reads ``sched.multi`` once and
keeps to that decision, so a change of GOMAXPROCS between two operations
is safe.

Readying a G is done after the lock is released (chan.go: "do not ready a G
while holding this lock"); the value is stored in the sudog before.

Threads that are not Ms: during a run, an operation of another thread is
handed to a goroutine (cgocall.py), so whatever changes a channel runs on an
M. The test (``notm``) comes before the first change: in the general path
at ``_lockop``; with one M on each branch that changes something (a park
needs the current goroutine anyway, and parking fails on another thread),
so a ping-pong hand-off or a buffered send pays one ``m0owned()``
and a park nothing.
"""

from __future__ import annotations

import operator
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, cast

from greenlet import getcurrent

from . import cgocall as _cgo
from . import trace as _trace
from .panic import Panic, outside
from .proc import gopark, preemptcheck, ready, runqput, schedule
from .runtime2 import (
    G_RUNNABLE,
    G_WAITING,
    WAIT_CHAN_RECEIVE,
    WAIT_CHAN_RECEIVE_NIL,
    WAIT_CHAN_SEND,
    WAIT_CHAN_SEND_NIL,
    G,
    Sudog,
    m0owned,
    sched,
)

_lockinit = threading.Lock()

# The buffer and wait queues of a channel that has not needed them yet: a
# deque costs 600 bytes, and most channels never buffer a value or never
# have a waiter on one side (a timeout that does not fire has neither).
# Empty and immutable: reads see an empty deque, and the first append
# (AttributeError, free until it happens) makes the real one.
_EMPTY = cast("deque[Any]", ())

# A queue holding more dead select sudogs than this (and than live ones) is
# compacted; below it they wait for the wakers that skip them.
COMPACT_MIN = 16


def lockof(c: Chan) -> threading.Lock:
    """c's lock, made on first use: with one M a channel never needs one,
    and making a lock costs more than making the rest of the channel."""
    lock = c.lock
    if lock is None:
        with _lockinit:
            lock = c.lock
            if lock is None:
                lock = c.lock = threading.Lock()
    return lock


def dequeue(q: deque[Sudog]) -> Sudog | None:
    """Pop the first waiter that can still take an operation.

    A select's sudog is only valid if this caller wins its token (Go's
    selectDone CAS); the losers are dropped here.
    """
    while q:
        sg = q.popleft()
        tok = sg.token
        if tok is None:
            return sg
        try:
            tok.pop()
        except IndexError:
            continue
        sg.g.param = sg
        return sg
    return None


def enqueue(c: Chan, send: bool, sg: Sudog) -> deque[Sudog]:
    """Append sg to c's send or receive queue, made on first use; returns it."""
    q = c.sendq if send else c.recvq
    if q is _EMPTY:
        q = deque()
        if send:
            c.sendq = q
        else:
            c.recvq = q
    q.append(sg)
    return q


def unqueue(c: Chan, q: deque[Sudog], sg: Sudog) -> None:
    """Take sg, a sudog that will not be woken through q, out of q.

    O(1) amortised (so that N goroutines selecting on one channel cost O(N),
    not Go's O(N) per select): at either end it is popped; in the middle a
    dead select sudog (its token gone) stays for the wakers to skip, and
    ``c.ndead`` counts it; when the dead outnumber the living, one pass
    drops them all. A live sudog (plain, or a select unwinding) is removed
    at once. c's lock is held, or only one M runs.
    """
    if not q:
        return
    if q[-1] is sg:
        q.pop()
    elif q[0] is sg:
        q.popleft()
    elif sg.token is None or sg.token:
        try:
            q.remove(sg)
        except ValueError:
            pass  # a waker popped it already
    else:
        n = c.ndead = c.ndead + 1
        if n > COMPACT_MIN and 2 * n > len(q):
            live = [w for w in q if w.token is None or w.token]
            q.clear()
            q.extend(live)
            c.ndead = 0


def unpark(c: Chan, send: bool, sg: Sudog) -> None:
    """A park on c was left by an exception (the run's end unwinding the
    goroutine, an asynchronous exception): take sg out of c's queue if no
    waker did.

    The clean-up of gopark's contract (see gopark): without it a channel
    that outlives the run would hand a later value to a dead goroutine.
    Always locks: this is not a hot path, and other Ms may still run.
    """
    with lockof(c):
        unqueue(c, c.sendq if send else c.recvq, sg)
    sg.elem = None


def notm() -> bool:
    """During a run, the caller is a thread that is not an M: its channel
    operations go through cgocall. With one M that is any thread but M0's;
    with several (or a preemption mark), any thread not running a goroutine
    (no channel operation runs on an M's g0)."""
    if m0owned() or not sched.running:
        return False
    return not sched.multi or getattr(getcurrent(), "gp", None) is None


def _lockop(c: Chan) -> bool:
    """The general path's entry: a preemption point, then c's lock. False,
    with nothing locked, for a thread that is not an M (see notm)."""
    if notm():
        return False
    preemptcheck()
    lockof(c).acquire()
    return True


def _winselect(sg: Sudog, q: deque[Sudog]) -> Sudog | None:
    """sg, just popped from q, belongs to a select: win it or find another."""
    try:
        sg.token.pop()  # type: ignore[union-attr]
    except IndexError:
        return dequeue(q)
    sg.g.param = sg
    return sg


def bufput(c: Chan, v: Any) -> None:
    """Append v to c's buffer, making the buffer on first use."""
    buf = c.buf
    if buf is _EMPTY:
        buf = c.buf = deque()
    buf.append(v)


def _capacity(cap: Any) -> int:
    if isinstance(cap, bool) or not isinstance(cap, int):
        try:
            cap = operator.index(cap)
        except TypeError:
            raise TypeError(
                f"gort.chan: capacity must be an int, not {type(cap).__name__}"
            ) from None
    if cap < 0 or cap > sys.maxsize:
        raise ValueError("makechan: size out of range")
    return int(cap)


class Chan:
    """A Go channel: ``gort.chan(cap)``."""

    __slots__ = (
        "__weakref__",
        "buf",
        "capacity",
        "closed",
        "dataqsiz",
        "lock",
        "ndead",
        "recvq",
        "sendq",
        "timer",
    )

    def __init__(self, cap: int = 0) -> None:
        if cap.__class__ is not int or not 0 <= cap <= sys.maxsize:
            cap = _capacity(cap)
        self.buf = _EMPTY  # deques from the first value or waiter on
        self.recvq: deque[Sudog] = _EMPTY
        self.sendq: deque[Sudog] = _EMPTY
        self.capacity = cap
        # The room a send may fill: the capacity, and -1 once closed, so that
        # a send's fast path needs no separate test of closed.
        self.dataqsiz = cap
        self.closed = False
        self.ndead = 0  # dead select sudogs left in the queues (unqueue)
        self.lock: threading.Lock | None = None  # made by lockof on first use
        # The Timer or Ticker that sends on this channel (Go 1.23's
        # hchan.timer): holding the channel keeps it alive, while the timer
        # heap holds the timer only weakly (time.py).
        self.timer: Any = None
        if sched.bubbles:
            from .synctest import adopt

            adopt(self)  # made in a synctest bubble: a bubble channel

    def __repr__(self) -> str:
        state = " closed" if self.closed else ""
        return f"<gort.chan {id(self):#x} {len(self.buf)}/{self.capacity}{state}>"

    @property
    def cap(self) -> int:
        return self.capacity

    def __len__(self) -> int:
        return len(self.buf)

    def send(self, v: Any) -> None:
        """Send v; blocks until a receiver takes it or the buffer has room."""
        locking = sched.multi
        if locking and not _lockop(self):
            return _cgo.chansend(self, v)
        recvq = self.recvq
        if recvq:  # a receiver waits, so the channel is open (close wakes them all)
            if not locking and not m0owned() and sched.running:
                return _cgo.chansend(self, v)  # a thread that is not an M (notm)
            sg: Sudog | None = recvq.popleft()
            if sg.token is not None:  # type: ignore[union-attr]
                sg = _winselect(sg, recvq)  # type: ignore[arg-type]
            if sg is not None:
                sg.elem = v
                sg.success = True
                if locking:
                    self.lock.release()  # type: ignore[union-attr]
                    ready(sg.g)
                    return
                # ready(sg.g), inlined on the hot path of a hand-off: with one
                # M, sg.g's home is this P (the caller's) and it goes to runnext.
                gp = sg.g
                if sched.tracing:
                    _trace.unblock(gp)
                gp.status = G_RUNNABLE
                pp = gp.p
                old = pp.runnext
                pp.runnext = gp
                if old is not None:
                    runqput(pp, old)
                return
        buf = self.buf
        if len(buf) < self.dataqsiz:  # never once closed: dataqsiz is -1
            if not locking and not m0owned() and sched.running:
                return _cgo.chansend(self, v)  # a thread that is not an M (notm)
            try:
                buf.append(v)
            except AttributeError:  # the first buffered value: make the deque
                self.buf = deque((v,))
            if locking:
                self.lock.release()  # type: ignore[union-attr]
            return
        if self.closed:
            if locking:
                self.lock.release()  # type: ignore[union-attr]
            raise Panic("send on closed channel")
        try:
            gp = getcurrent().gp
        except AttributeError:
            if locking:
                self.lock.release()  # type: ignore[union-attr]
            raise outside("gort.chan.send") from None
        sg = gp.sudog
        if sg is None:
            sg = gp.sudog = Sudog(gp)
        sg.elem = v
        sg.success = False
        try:
            self.sendq.append(sg)
        except AttributeError:  # the first waiter: make the queue
            self.sendq = deque((sg,))
        gp.status = G_WAITING
        gp.waitreason = WAIT_CHAN_SEND
        if locking:
            self.lock.release()  # type: ignore[union-attr]
        try:
            schedule(gp, gp.p)
        except BaseException:
            unpark(self, True, sg)
            raise
        if not sg.success:
            sg.elem = None
            raise Panic("send on closed channel")

    def recv(self, _ok: bool = False) -> Any:
        """Receive a value; None once the channel is closed and drained.

        (``_ok`` is recv2's switch: it keeps the hot path to one call.)
        """
        locking = sched.multi
        if locking and not _lockop(self):
            return _cgo.chanrecv(self, _ok)
        buf = self.buf
        sendq = self.sendq
        if buf:
            if not locking and not m0owned() and sched.running:
                return _cgo.chanrecv(self, _ok)  # a thread that is not an M (notm)
            v = buf.popleft()
            if sendq:
                # The buffer was full: the first sender's value joins the tail.
                sg = dequeue(sendq)
                if sg is not None:
                    buf.append(sg.elem)
                    sg.elem = None
                    sg.success = True
                    if locking:
                        self.lock.release()  # type: ignore[union-attr]
                    ready(sg.g)
                    return (v, True) if _ok else v
            if locking:
                self.lock.release()  # type: ignore[union-attr]
            return (v, True) if _ok else v
        if sendq:
            if not locking and not m0owned() and sched.running:
                return _cgo.chanrecv(self, _ok)  # a thread that is not an M (notm)
            sg = sendq.popleft()
            if sg.token is not None:
                sg = _winselect(sg, sendq)
            if sg is not None:
                v = sg.elem
                sg.elem = None
                sg.success = True
                if locking:
                    self.lock.release()  # type: ignore[union-attr]
                    ready(sg.g)
                    return (v, True) if _ok else v
                gp = sg.g  # ready(gp), inlined as in send
                if sched.tracing:
                    _trace.unblock(gp)
                gp.status = G_RUNNABLE
                pp = gp.p
                old = pp.runnext
                pp.runnext = gp
                if old is not None:
                    runqput(pp, old)
                return (v, True) if _ok else v
        if self.closed:
            if locking:
                self.lock.release()  # type: ignore[union-attr]
            return (None, False) if _ok else None
        try:
            gp = getcurrent().gp
        except AttributeError:
            if locking:
                self.lock.release()  # type: ignore[union-attr]
            raise outside("gort.chan.recv2" if _ok else "gort.chan.recv") from None
        sg = gp.sudog
        if sg is None:
            sg = gp.sudog = Sudog(gp)
        sg.success = False
        try:
            self.recvq.append(sg)
        except AttributeError:  # the first waiter: make the queue
            self.recvq = deque((sg,))
        gp.status = G_WAITING
        gp.waitreason = WAIT_CHAN_RECEIVE
        if locking:
            self.lock.release()  # type: ignore[union-attr]
        try:
            schedule(gp, gp.p)
        except BaseException:
            unpark(self, False, sg)
            raise
        v = sg.elem
        sg.elem = None
        return (v, sg.success) if _ok else v

    def recv2(self) -> tuple[Any, bool]:
        """Receive ``(value, ok)``; ok is False once closed and drained."""
        r: tuple[Any, bool] = self.recv(True)
        return r

    def __iter__(self) -> Iterator[Any]:
        """Receive until the channel is closed and drained.

        The loop takes buffered values itself while one M runs goroutines
        and no sender waits (recv's own fast path, minus a call per value).
        """
        # The loop keeps its own references, so the lazily made deques are
        # made now (an unbuffered channel never gets a buffer).
        if self.buf is _EMPTY and self.capacity:
            self.buf = deque()
        if self.sendq is _EMPTY:
            self.sendq = deque()
        buf = self.buf
        sendq = self.sendq
        recv = self.recv
        direct = not notm()  # a thread that is not an M receives through cgocall
        while True:
            if buf and not sendq and direct and not sched.multi:
                yield buf.popleft()
                continue
            v, ok = recv(True)
            if not ok:
                return
            yield v

    def close(self) -> None:
        """Close the channel: every waiting receiver and sender wakes."""
        locking = sched.multi
        if locking:
            if not _lockop(self):
                return _cgo.chanclose(self)
        elif notm():
            return _cgo.chanclose(self)
        if self.closed:
            if locking:
                self.lock.release()  # type: ignore[union-attr]
            raise Panic("close of closed channel")
        self.closed = True
        self.dataqsiz = -1
        woken: list[Sudog] = []
        for q in (self.recvq, self.sendq):
            while True:
                sg = dequeue(q)
                if sg is None:
                    break
                sg.elem = None
                sg.success = False
                woken.append(sg)
        self.ndead = 0
        if locking:
            self.lock.release()  # type: ignore[union-attr]
        for sg in woken:
            ready(sg.g)


def selectnbsend(c: Chan, v: Any, wake: Callable[[G], None] = ready) -> bool:
    """Send v if that can be done without blocking (select with default).

    ``wake`` readies a receiver that gets v (timers pass ``readytimer``).
    """
    locking = sched.multi
    if locking:
        lockof(c).acquire()
    if c.closed:
        if locking:
            c.lock.release()  # type: ignore[union-attr]
        raise Panic("send on closed channel")
    sg = dequeue(c.recvq) if c.recvq else None
    if sg is None and len(c.buf) >= c.dataqsiz:
        if locking:
            c.lock.release()  # type: ignore[union-attr]
        return False
    if sg is None:
        bufput(c, v)
    if locking:
        c.lock.release()  # type: ignore[union-attr]
    if sg is not None:
        sg.elem = v
        sg.success = True
        wake(sg.g)
    return True


class NilChan(Chan):
    """The nil channel: sends and receives block forever; close panics."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<gort.nilchan>"

    @property
    def cap(self) -> int:
        return 0

    def send(self, v: Any) -> None:
        _block_forever("gort.nilchan.send", WAIT_CHAN_SEND_NIL)

    def recv(self, _ok: bool = False) -> Any:
        _block_forever("gort.nilchan.recv", WAIT_CHAN_RECEIVE_NIL)

    def close(self) -> None:
        raise Panic("close of nil channel")


def _block_forever(call: str, reason: str) -> None:
    try:
        gp: G = getcurrent().gp
    except AttributeError:
        raise outside(call) from None
    gopark(gp, reason)
    raise AssertionError("unreachable: a goroutine blocked forever was woken")


nilchan = NilChan()


_trace.hot(Chan.send, Chan.recv)
