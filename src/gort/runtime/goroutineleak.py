"""Goroutines blocked forever (the idea of Go 1.26's goroutineleak profile).

A goroutine parked on a channel or a sync primitive (a runtime semaphore,
a Cond's notify list, or anything registered with ``register_waitable``)
can only be woken by someone who can reach that object. Go's collector
finds leaks by marking from every root except the stacks of such blocked
goroutines; a blocked goroutine whose channel gets marked is unblockable
and its stack becomes a root in turn, to a fixed point; what is left is
leaked. gort asks the same question of CPython's collector, from the
other end:

* For each channel a blocked goroutine waits on, walk the graph backwards
  (``gc.get_referrers``, one heap scan per level, all of a level at once)
  until it meets a root: a module's globals, a pending timer (it will send),
  the stack of a goroutine that is running, runnable, sleeping or waiting
  for I/O, or the stack of a thread that is not a goroutine (the caller of
  ``gort.run``). Stacks are read from frames (``f_locals``), because the
  collector does not see the locals of a frame that is still executing.
  Meeting the stack of a blocked goroutine instead records that goroutine
  as a holder.
* The runtime's own structures (G, sudog, P, M, sched, greenlets) are not
  walked: every channel is "reachable" through its waiters' sudogs and
  sched.allgs, and that reachability wakes no one.
* Fixed point: a blocked goroutine is live if one of its channels meets a
  root or is held by a live goroutine. The others are leaked.

Conservative where unsure: a goroutine whose primitive is unknown, or
whose search grows past ``SEARCH_LIMIT`` objects, counts as live. A walk
is one heap scan per level, so this is a diagnostic (tens of milliseconds
in a large process), not something for a hot path.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Iterable
from types import FrameType, ModuleType
from typing import Any

from greenlet import greenlet

from .chan import Chan
from .proc import getg
from .runtime2 import (
    G_WAITING,
    WAIT_CHAN_RECEIVE_NIL,
    WAIT_CHAN_SEND_NIL,
    WAIT_IO,
    WAIT_SELECT_NO_CASES,
    WAIT_SLEEP,
    G,
    M,
    Note,
    P,
    Sched,
    Sudog,
    sched,
)
from .sema import NotifyList, Sema
from .time import STALE, TimerState, weakly_timed
from .traceback import format_goroutine, status_string

SEARCH_LIMIT = 50_000  # objects one backward search may visit before giving up (live)
ROOT = 0  # the holder id of every root (goids start at 1)

# Waits that end by themselves (a timer, the poller): never leaks.
NOT_DURABLE = frozenset({WAIT_SLEEP, WAIT_IO})
# Waits nothing can end: always leaks.
HOPELESS = frozenset({WAIT_CHAN_RECEIVE_NIL, WAIT_CHAN_SEND_NIL, WAIT_SELECT_NO_CASES})

_CUT = (G, Sudog, P, M, Sched, Note, greenlet)
_THIS_FILE = __file__


def _chan_waiters(c: Chan) -> Iterable[G]:
    for q in (c.recvq, c.sendq):
        for sg in list(q):
            tok = sg.token
            if tok is None or tok:  # a select another channel completed is no waiter
                yield sg.g


def _sema_waiters(s: Sema) -> Iterable[G]:
    return [sg.g for sg in list(s.waitq)]


def _notify_waiters(nl: NotifyList) -> Iterable[G]:
    return [sg.g for sg in list(nl.waiters)]


# type -> the goroutines queued on an object of that type. sync's Mutex,
# RWMutex, WaitGroup and Once park on a Sema, Cond on a NotifyList; a
# search from those reaches the primitive that owns them.
_waitables: dict[type, Callable[[Any], Iterable[G]]] = {
    Chan: _chan_waiters,
    Sema: _sema_waiters,
    NotifyList: _notify_waiters,
}


def register_waitable(cls: type, waiters: Callable[[Any], Iterable[G]]) -> None:
    """Teach the leak finder a primitive: ``waiters(obj)`` lists the Gs
    parked on obj."""
    _waitables[cls] = waiters


def leaks() -> list[str]:
    """gort.leaks(): every goroutine blocked forever, as a dump block."""
    getg("gort.leaks")
    return [leak_block(gp) for gp in leaked_goroutines()]


def leak_block(gp: G) -> str:
    """gp's dump block, its status marked as Go marks a leaked goroutine."""
    lines = format_goroutine(gp).split("\n")
    lines[0] = f"goroutine {gp.goid} [{status_string(gp)} (leaked)]:"
    return "\n".join(lines)


def leak_report() -> str:
    """GODEBUG=leakcheck=1's report at the end of a run ("" if none)."""
    blocks = leaks()
    if not blocks:
        return ""
    head = f"gort: leakcheck: {len(blocks)} goroutine(s) blocked forever:\n\n"
    return head + "\n\n".join(blocks) + "\n"


def leaked_goroutines() -> list[G]:
    """The blocked-forever goroutines, by goid. Call from a goroutine."""
    gs = sorted(list(sched.allgs.values()), key=_goid)
    blocked = {
        gp.goid: gp for gp in gs if gp.status == G_WAITING and gp.waitreason not in NOT_DURABLE
    }
    if not blocked:
        return []
    reasons = {goid: gp.waitreason for goid, gp in blocked.items()}
    finder = _Finder()
    finder.stacks(gs, blocked)
    waits = finder.wait_objects(blocked)
    live: set[int] = set()
    for goid in blocked:
        if goid not in waits and reasons[goid] not in HOPELESS:
            live.add(goid)  # parked on something the finder does not know
    holders = {i: finder.holders(i) for i in range(len(finder.objs))}
    changed = True
    while changed:
        changed = False
        for goid, idxs in waits.items():
            if goid in live:
                continue
            if any(ROOT in holders[i] or holders[i] & live for i in idxs):
                live.add(goid)
                changed = True
    return [
        gp
        for goid, gp in blocked.items()
        if goid not in live and gp.status == G_WAITING and gp.waitreason == reasons[goid]
    ]


def _goid(gp: G) -> int:
    return gp.goid


class _Finder:
    """The state of one search. Its containers hold ids, except ``objs``
    and ``keep``, whose ids are skipped when they show up as referrers."""

    def __init__(self) -> None:
        self.owners: dict[int, set[int]] = {}  # id(stack value or frame) -> holder ids
        self.keep: list[Any] = []  # keeps the stack values alive, so their ids stay theirs
        self.objs: list[Any] = []  # the wait objects
        self.modules = {id(vars(m)) for m in list(sys.modules.values()) if m is not None}
        # What pending timer entries hold weakly (gort.after's channels, Timers
        # and Tickers): no referrer shows it, yet the timer will send.
        self.timed = {id(o) for o in weakly_timed()}

    def _own(self, obj: Any, holder: int) -> None:
        self.keep.append(obj)
        self.owners.setdefault(id(obj), set()).add(holder)

    def _frames(self, frame: FrameType | None, holder: int) -> None:
        while frame is not None:
            if frame.f_code.co_filename != _THIS_FILE:
                self._own(frame, holder)
                f_locals = frame.f_locals
                self._own(f_locals, holder)
                for v in list(f_locals.values()):
                    self._own(v, holder)
            frame = frame.f_back

    def stacks(self, gs: list[G], blocked: dict[int, G]) -> None:
        """Record what every goroutine's and every thread's stack holds."""
        for gp in gs:
            holder = gp.goid if gp.goid in blocked else ROOT
            for v in (gp.fn, *gp.args, *gp.kwargs.values()):
                self._own(v, holder)
            gl = gp.glet
            if gl is not None and gl.gr_frame is not None:
                self._frames(gl.gr_frame, holder)
        for m in list(sched.allm):
            g0 = m.g0
            if g0 is not None and g0.gr_frame is not None:
                self._frames(g0.gr_frame, ROOT)  # the caller of run, an M's loop
        for frame in list(sys._current_frames().values()):
            self._frames(frame, ROOT)  # running goroutines and every other thread

    def wait_objects(self, blocked: dict[int, G]) -> dict[int, list[int]]:
        """goid -> indexes in self.objs of what it is parked on."""
        types = tuple(_waitables)
        found = [o for o in gc.get_objects() if isinstance(o, types)]
        waits: dict[int, list[int]] = {}
        for obj in found:
            waiters = _waitables[type(obj)] if type(obj) in _waitables else _lookup(obj)
            # By identity: a G of an earlier run may still sit in an old
            # channel's queue, with a goid this run reuses.
            goids = {gp.goid for gp in waiters(obj) if blocked.get(gp.goid) is gp}
            if not goids:
                continue
            self.objs.append(obj)
            for goid in goids:
                waits.setdefault(goid, []).append(len(self.objs) - 1)
        return waits

    def holders(self, i: int) -> set[int]:
        """Who reaches self.objs[i]: goids of blocked goroutines, ROOT."""
        skip = {id(self.objs), id(self.keep)}
        frontier = [self.objs[i]]
        seen = {id(frontier[0])}
        found: set[int] = set()
        while frontier:
            for o in frontier:
                found |= self.owners.get(id(o), set())
                if self._is_root(o):
                    found.add(ROOT)
            if ROOT in found:
                return found
            refs = gc.get_referrers(*frontier)
            mine = id(frontier)
            nxt = []
            for r in refs:
                rid = id(r)
                if rid in seen or rid in skip or rid == mine or isinstance(r, _CUT):
                    continue
                if type(r) is tuple and len(r) == len(frontier) and _same(r, frontier):
                    continue  # the argument tuple of get_referrers itself
                if isinstance(r, FrameType) and r.f_code.co_filename == _THIS_FILE:
                    continue
                seen.add(rid)
                nxt.append(r)
            del refs
            if len(seen) > SEARCH_LIMIT:
                found.add(ROOT)  # too big to tell: assume someone can reach it
                return found
            frontier = nxt
        return found

    def _is_root(self, o: Any) -> bool:
        if isinstance(o, ModuleType) or id(o) in self.modules:
            return True
        if id(o) in self.timed:
            return True
        return isinstance(o, TimerState) and o._seq != STALE  # it will fire


def _same(a: tuple[Any, ...], b: list[Any]) -> bool:
    return all(x is y for x, y in zip(a, b, strict=True))


def _lookup(obj: Any) -> Callable[[Any], Iterable[G]]:
    for cls, f in _waitables.items():
        if isinstance(obj, cls):
            return f
    return lambda _o: ()
