"""Semaphores for package sync (mirrors runtime/sema.go).

``semacquire(s)`` waits until ``s.count > 0`` and decrements it;
``semrelease(s)`` increments it, or hands the unit straight to the first
waiter. Every sync primitive (Mutex, RWMutex, WaitGroup, Once) parks on
these, so a goroutine that waits for a lock parks like one that waits on a
channel: its M runs other goroutines, and checkdead sees it waiting.

What differs from Go, and why:

* Go finds the wait queue of a semaphore address in a hash table of treaps
  (``semtable``). Python objects can simply own their queue, so a ``Sema``
  is the count and its queue together.
* Go's ``semrelease`` increments the count and lets the woken waiter race
  for it with newcomers (only ``handoff`` gives it to the waiter). Here a
  release with a waiter always gives the unit to that waiter (its sudog's
  ``success``, Go's ``ticket``): the count only ever holds units that no one
  waited for. The primitives above do their own racing in their state words
  (Mutex's normal mode), exactly as in Go; the semaphore is only their way
  to sleep and wake. ``handoff`` keeps Go's other half: the releaser yields
  so that the waiter runs at once (starvation mode's direct handoff).
* ``notify_list_*`` (Go's notifyList, for sync.Cond) lives here too.

Locking: like channels, a Sema or NotifyList is locked only while several Ms
run goroutines (``sched.multi``). With one M, runtime code is never
interrupted (preemption happens only at user-code safe points), so each
function here is atomic. The lock is a thread lock held for a few field
updates, never across a park.

Clean-up: a waiter unwound while parked (GreenletExit at the end of a run)
leaves the queue. This is gopark's clean-up contract (proc.gopark's
``cleanup``), inlined around ``schedule`` as chan.py's hot paths do: the
waiter's status must be set while the queue's lock is still held, or a
waker on another M could ready it before it is marked waiting. If a unit
had already been handed to it, the caller's ``abort(woken)`` decides what
to do with it; without one the unit is passed on with ``semrelease``, so no
unit and no waiter is ever lost.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from .proc import current_g, getg, goyield, preemptcheck, ready, schedule
from .runtime2 import G_WAITING, WAIT_SEMACQUIRE, Sudog, sched

# Wait reasons of package sync (runtime2.go waitReasonStrings), verbatim.
WAIT_SYNC_MUTEX_LOCK = "sync.Mutex.Lock"
WAIT_SYNC_RWMUTEX_RLOCK = "sync.RWMutex.RLock"
WAIT_SYNC_RWMUTEX_LOCK = "sync.RWMutex.Lock"
WAIT_SYNC_WAITGROUP_WAIT = "sync.WaitGroup.Wait"
WAIT_SYNC_COND_WAIT = "sync.Cond.Wait"

_lockinit = threading.Lock()


def syncpreempt() -> None:
    """The preemption point of sync's slow paths (and the call that clears a
    ``sched.multi`` that sysmon set only to reach one). Not once the program
    is over: unwinding goroutines still release what they hold."""
    if not sched.exiting:
        preemptcheck()


class Sema:
    """A semaphore: a count of free units and a FIFO queue of waiters.

    ``count`` and ``waitq`` are guarded by ``lock`` when ``sched.multi``.
    Invariant: ``count > 0`` implies ``waitq`` is empty (a release with a
    waiter hands the unit over instead of counting it).
    """

    __slots__ = ("count", "lock", "waitq")

    def __init__(self, count: int = 0) -> None:
        self.count = count
        self.waitq: deque[Sudog] = deque()
        self.lock: threading.Lock | None = None  # made on first use with several Ms

    def __repr__(self) -> str:
        return f"<sema count={self.count} waiters={len(self.waitq)}>"


def semlock(s: Sema | NotifyList) -> threading.Lock:
    """s's lock, made on first use (with one M it is never needed)."""
    lock = s.lock
    if lock is None:
        with _lockinit:
            lock = s.lock
            if lock is None:
                lock = s.lock = threading.Lock()
    return lock


def semacquire(
    s: Sema,
    lifo: bool = False,
    reason: str = WAIT_SEMACQUIRE,
    call: str = "gort.semacquire",
    abort: Callable[[bool], None] | None = None,
) -> None:
    """Take one unit of s, parking until one is released.

    ``lifo`` queues the waiter at the head (Mutex: a waiter that already
    waited goes first). ``reason`` is shown in goroutine dumps. ``abort``
    runs when the park is left by an exception, with whether a unit had
    been handed over (see the module's doc).
    """
    locking = sched.multi
    if not locking and s.count > 0:
        s.count -= 1
        return
    gp = getg(call)
    if locking:
        syncpreempt()
        semlock(s).acquire()
    if s.count > 0:
        s.count -= 1
        if locking:
            s.lock.release()  # type: ignore[union-attr]
        return
    sg = gp.sudog
    if sg is None:
        sg = gp.sudog = Sudog(gp)
    sg.c = s
    sg.success = False
    if lifo:
        s.waitq.appendleft(sg)
    else:
        s.waitq.append(sg)
    gp.status = G_WAITING
    gp.waitreason = reason
    if locking:
        s.lock.release()  # type: ignore[union-attr]
    try:
        schedule(gp, gp.p)
    except BaseException:
        _semabort(s, sg, abort)
        raise
    sg.c = None


def _semabort(s: Sema, sg: Sudog, abort: Callable[[bool], None] | None) -> None:
    """A parked semacquire was unwound: leave the queue, settle a handed unit."""
    locking = sched.multi
    if locking:
        semlock(s).acquire()
    woken = sg.success
    if not woken:
        try:
            s.waitq.remove(sg)
        except ValueError:
            pass
    if locking:
        s.lock.release()  # type: ignore[union-attr]
    sg.c = None
    sg.success = False
    if abort is not None:
        abort(woken)
    elif woken:
        semrelease(s)


def semrelease(s: Sema, handoff: bool = False) -> None:
    """Release one unit of s: to the first waiter if there is one.

    With ``handoff`` the caller then yields its P to that waiter (if it is
    on the same P), so it runs at once: Go's direct handoff, which keeps a
    contended Mutex in starvation mode from being taken by the releaser
    again before the waiter wakes.
    """
    locking = sched.multi
    if locking:
        syncpreempt()
        locking = sched.multi
    if locking:
        semlock(s).acquire()
    q = s.waitq
    if not q:
        s.count += 1
        if locking:
            s.lock.release()  # type: ignore[union-attr]
        return
    sg = q.popleft()
    sg.success = True
    if locking:
        s.lock.release()  # type: ignore[union-attr]
    gp = sg.g
    ready(gp)
    if handoff:
        cur = current_g()
        if cur is not None and cur.p is gp.p:
            goyield(cur, cur.p)


# ---------------------------------------------------------------------------
# notifyList (sema.go): the wait queue of sync.Cond.


class NotifyList:
    """Ticket-based wait list (Go's notifyList).

    ``wait`` is the next ticket to hand out, ``notify`` the next to wake.
    A waiter takes a ticket *before* it unlocks the Cond's lock and parks
    only after, so a signal sent in between is not lost: the waiter sees
    its ticket already notified and does not park.
    Guarded by ``lock`` when ``sched.multi``.
    """

    __slots__ = ("lock", "notify", "wait", "waiters")

    def __init__(self) -> None:
        self.wait = 0
        self.notify = 0
        self.waiters: deque[Sudog] = deque()  # each sudog's elem is its ticket
        self.lock: threading.Lock | None = None


def notify_list_add(nl: NotifyList) -> int:
    """Take a ticket; call before releasing the lock the waiter waits under."""
    if sched.multi:
        with semlock(nl):
            t = nl.wait
            nl.wait = t + 1
            return t
    t = nl.wait
    nl.wait = t + 1
    return t


def notify_list_wait(nl: NotifyList, t: int, call: str) -> None:
    """Park until ticket t is notified (at once if it already was)."""
    gp = getg(call)
    locking = sched.multi
    if locking:
        syncpreempt()
        semlock(nl).acquire()
    if t < nl.notify:
        if locking:
            nl.lock.release()  # type: ignore[union-attr]
        return
    sg = gp.sudog
    if sg is None:
        sg = gp.sudog = Sudog(gp)
    sg.elem = t
    sg.success = False
    sg.c = nl
    nl.waiters.append(sg)
    gp.status = G_WAITING
    gp.waitreason = WAIT_SYNC_COND_WAIT
    if locking:
        nl.lock.release()  # type: ignore[union-attr]
    try:
        schedule(gp, gp.p)
    except BaseException:
        _notifyabort(nl, sg)
        raise
    finally:
        sg.elem = None
        sg.c = None


def _notifyabort(nl: NotifyList, sg: Sudog) -> None:
    """An unwound Cond waiter leaves; a signal it had received goes to another."""
    locking = sched.multi
    if locking:
        semlock(nl).acquire()
    woken = sg.success
    if not woken:
        try:
            nl.waiters.remove(sg)
        except ValueError:
            pass
    if locking:
        nl.lock.release()  # type: ignore[union-attr]
    sg.success = False
    if woken:
        notify_list_notify_one(nl)


def notify_list_notify_one(nl: NotifyList) -> None:
    """Wake the waiter holding the oldest unnotified ticket (Cond.Signal)."""
    locking = sched.multi
    if locking:
        semlock(nl).acquire()
    if nl.wait == nl.notify:
        if locking:
            nl.lock.release()  # type: ignore[union-attr]
        return  # nobody has a ticket that is not notified yet
    t = nl.notify
    nl.notify = t + 1
    found: Sudog | None = None
    for sg in nl.waiters:
        if sg.elem == t:
            found = sg
            break
    if found is not None:
        nl.waiters.remove(found)
        found.success = True
    if locking:
        nl.lock.release()  # type: ignore[union-attr]
    # Not found: the ticket's holder has not parked yet and will see t < notify.
    if found is not None:
        ready(found.g)


def notify_list_notify_all(nl: NotifyList) -> None:
    """Wake every waiter (Cond.Broadcast)."""
    locking = sched.multi
    if locking:
        semlock(nl).acquire()
    nl.notify = nl.wait
    woken = list(nl.waiters)
    nl.waiters.clear()
    for sg in woken:
        sg.success = True
    if locking:
        nl.lock.release()  # type: ignore[union-attr]
    for sg in woken:
        ready(sg.g)
