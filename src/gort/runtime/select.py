"""select (mirrors runtime/select.go: selectgo).

1. Poll the cases in a uniformly random order (inside-out Fisher-Yates)
   and take the first that is ready; else ``default`` if there is one.
2. Otherwise enqueue one sudog per case, all sharing one token, and park
   once. The waker that pops the token owns the select; it records the
   winning sudog in ``g.param``.
3. On wake-up, remove the other sudogs from their queues ("otherwise they
   stack up on quiet channels"), each in O(1) amortised (``chan.unqueue``),
   so N goroutines selecting on one shared channel cost O(N), not O(N^2).
   A park left by an exception takes the token and removes all of them.

The random order comes from ``sched.rand``, the runtime's private source
(Go's cheaprand): user code seeding ``random`` changes nothing here.

Channels are locked (when ``sched.multi``) in one global order, by the
channel's address (``id``), each once, and unlocked in reverse, so two
selects never deadlock.
"""

from __future__ import annotations

from typing import Any

from greenlet import getcurrent

from . import cgocall as _cgo
from .chan import Chan, bufput, dequeue, enqueue, lockof, nilchan, notm, unqueue
from .panic import Panic, outside
from .proc import gopark, preemptcheck, ready, schedule
from .runtime2 import G_WAITING, WAIT_SELECT, WAIT_SELECT_NO_CASES, G, Sudog, sched

_RECV = 0
_RECV2 = 1
_SEND = 2


class _Default:
    """``gort.default``: the select case taken when no other is ready."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "gort.default"


default = _Default()

_chan_recv = Chan.recv
_chan_recv2 = Chan.recv2
_chan_send = Chan.send


def _bad_case(i: int, case: object) -> TypeError:
    hint = "" if callable(case) or type(case) is tuple else " (pass ch.recv, not ch.recv())"
    return TypeError(
        f"gort.select: case {i} ({case!r}) is not ch.recv, ch.recv2, (ch.send, value) "
        f"or gort.default{hint}"
    )


def _parse(cases: tuple[Any, ...]) -> tuple[list[tuple[int, Chan, int, Any]], int]:
    """The live cases (index, chan, kind, value) and the default's index."""
    scases: list[tuple[int, Chan, int, Any]] = []
    dflt = -1
    for i, case in enumerate(cases):
        if case is default:
            if dflt >= 0:
                raise TypeError("gort.select: multiple defaults")
            dflt = i
            continue
        value = None
        if type(case) is tuple:
            if len(case) != 2:
                raise _bad_case(i, case)
            case, value = case
            kind = _SEND
        else:
            kind = _RECV
        c = getattr(case, "__self__", None)
        f = getattr(case, "__func__", None)
        if not isinstance(c, Chan):
            raise _bad_case(i, case)
        if kind == _SEND:
            if f is not _chan_send and f is not type(c).send:
                raise _bad_case(i, case)
        elif f is _chan_recv2 or f is type(c).recv2:
            kind = _RECV2
        elif f is not _chan_recv and f is not type(c).recv:
            raise _bad_case(i, case)
        if c.__class__ is not Chan:  # the nil channel, or a synctest bubble's
            if c is nilchan:
                continue  # never ready
            from .synctest import check

            check(c, "send on" if kind == _SEND else "receive on")
        scases.append((i, c, kind, value))
    return scases, dflt


def _pollorder(n: int) -> list[int]:
    """A uniformly random permutation of range(n) (inside-out Fisher-Yates)."""
    order = [0] * n
    rnd = sched.rand.random
    for i in range(1, n):
        j = int(rnd() * (i + 1))
        order[i] = order[j]
        order[j] = i
    return order


def _lockorder(scases: list[tuple[int, Chan, int, Any]]) -> list[Chan]:
    seen: dict[int, Chan] = {}
    for _, c, _, _ in scases:
        seen[id(c)] = c
    return [seen[k] for k in sorted(seen)]


def _lock(chans: list[Chan]) -> None:
    for c in chans:
        lockof(c).acquire()


def _unlock(chans: list[Chan]) -> None:
    for c in reversed(chans):
        c.lock.release()  # type: ignore[union-attr]


def _try_case(c: Chan, kind: int, value: Any) -> tuple[bool, Any, Sudog | None]:
    """Complete a case now if it is ready. Channel locks must be held.

    Returns (done, result, sudog to ready once the locks are released).
    """
    if kind == _SEND:
        if c.closed:
            raise Panic("send on closed channel")
        sg = dequeue(c.recvq) if c.recvq else None
        if sg is not None:
            sg.elem = value
            sg.success = True
            return True, None, sg
        if len(c.buf) < c.dataqsiz:
            bufput(c, value)
            return True, None, None
        return False, None, None
    buf = c.buf
    if buf:
        v = buf.popleft()
        sg = dequeue(c.sendq) if c.sendq else None
        if sg is not None:
            buf.append(sg.elem)
            sg.elem = None
            sg.success = True
        return True, ((v, True) if kind == _RECV2 else v), sg
    sg = dequeue(c.sendq) if c.sendq else None
    if sg is not None:
        v = sg.elem
        sg.elem = None
        sg.success = True
        return True, ((v, True) if kind == _RECV2 else v), sg
    if c.closed:
        return True, ((None, False) if kind == _RECV2 else None), None
    return False, None, None


def select(*cases: Any) -> tuple[int, Any]:
    """Go's select: ``(index of the chosen case, its value)``."""
    scases, dflt = _parse(cases)
    if notm():
        return _cgo.selectgo(cases, dflt >= 0)  # a thread that is not an M
    if not scases:
        if dflt >= 0:
            return dflt, None
        return _block(WAIT_SELECT_NO_CASES)
    locking = sched.multi
    if locking:
        preemptcheck()
    chans = _lockorder(scases) if locking else []
    if locking:
        _lock(chans)
    try:
        for k in _pollorder(len(scases)):
            i, c, kind, value = scases[k]
            done, result, sg = _try_case(c, kind, value)
            if done:
                if locking:
                    _unlock(chans)
                    locking = False
                if sg is not None:
                    ready(sg.g)
                return i, result
    except BaseException:
        if locking:
            _unlock(chans)
        raise
    if dflt >= 0:
        if locking:
            _unlock(chans)
        return dflt, None
    return _selpark(scases, chans, locking)


def _selpark(
    scases: list[tuple[int, Chan, int, Any]], chans: list[Chan], locking: bool
) -> tuple[int, Any]:
    """Pass 2 and 3: wait on every case at once, then clean up."""
    try:
        gp: G = getcurrent().gp
    except AttributeError:
        if locking:
            _unlock(chans)
        raise outside("gort.select") from None
    token = [True]
    sudogs: list[Sudog] = []
    for k, (_, c, kind, value) in enumerate(scases):
        sg = Sudog(gp)
        sg.token = token
        sg.index = k
        if kind == _SEND:
            sg.elem = value
        enqueue(c, kind == _SEND, sg)
        sudogs.append(sg)
    gp.param = None
    gp.status = G_WAITING
    gp.waitreason = WAIT_SELECT
    if locking:
        _unlock(chans)
    try:
        schedule(gp, gp.p)
    except BaseException:
        # gopark's clean-up: take the token, so no waker can win any more,
        # and leave no sudog behind.
        try:
            token.pop()
        except IndexError:
            pass  # a waker won meanwhile: its value is dropped with the goroutine
        _dequeue_losers(scases, sudogs, None)
        raise
    won: Sudog = gp.param
    gp.param = None
    _dequeue_losers(scases, sudogs, won)
    i, _, kind, _ = scases[won.index]
    v = won.elem
    won.elem = None
    if kind == _SEND:
        if not won.success:
            raise Panic("send on closed channel")
        return i, None
    if kind == _RECV2:
        return i, (v, won.success)
    return i, v


def _dequeue_losers(
    scases: list[tuple[int, Chan, int, Any]], sudogs: list[Sudog], won: Sudog | None
) -> None:
    """Take every sudog but the winner out of its queue (each O(1)
    amortised: chan.unqueue). Locks whenever several Ms run, or when
    unwinding (won is None), which may happen while other Ms still run."""
    locking = sched.multi or won is None
    chans = _lockorder(scases) if locking else []
    if locking:
        _lock(chans)
    for sg, (_, c, kind, _) in zip(sudogs, scases, strict=True):
        if sg is won:
            continue
        unqueue(c, c.sendq if kind == _SEND else c.recvq, sg)
        sg.elem = None
    if locking:
        _unlock(chans)


def _block(reason: str) -> tuple[int, Any]:
    try:
        gp: G = getcurrent().gp
    except AttributeError:
        raise outside("gort.select") from None
    gopark(gp, reason)
    raise AssertionError("unreachable: a goroutine blocked forever was woken")
