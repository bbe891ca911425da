"""Channel operations from threads that are not Ms (after runtime/cgocall.go).

Go has no foreign threads: a C thread that calls into Go first borrows an
M (``needm``) and runs the callback on it (``cgocallbackg``). gort's
counterpart: during a run, a thread gort did not start (or a
``gort.syscall`` helper) that makes a channel operation does not touch the
channel itself. It hands the operation to a new goroutine, queued on P0 the
way every remote wake-up is (``inject``: append, then wake the M if it
sleeps), and waits for the result. The operation then runs on an M under
the ordinary rules, so:

* the single-M fast path, which takes no lock, never races another thread
  (a lock taken by the foreign thread alone would exclude nobody);
* the goroutines it wakes are readied by their own M, never by a write to
  a ``runnext`` the foreign thread does not own.

Only operations that do not block are made this way: one that would block
raises the "called outside a goroutine" error in the calling thread, as it
always did (a goroutine blocked on behalf of a thread is a wait checkdead
could not account for). What the foreign thread pays: one goroutine and a
thread wake-up per operation, a few tens of microseconds.

Detection (chan.notm): with one M (the hot case), whether this thread owns
``M0LOCK`` (``m0owned()``), tested on the branches of an operation that
change something, never on a park; with several Ms, the locking path asks
for the current goroutine. Its cost is in bench/RESULTS.md (issue 6, B5).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from greenlet import GreenletExit

from . import trace as _trace
from .panic import outside
from .proc import inject, newproc1, wakep
from .runtime2 import sched

# How often a waiting thread checks that the run it handed its operation to
# still exists (the operation itself wakes it at once).
_POLL = 0.05


class _NotRun:
    """The operation never ran: the run ended first (the caller retries it,
    now outside a run, or delegated to the next one)."""

    __slots__ = ()


NOTRUN = _NotRun()


class _Call:
    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = NOTRUN
        self.error: BaseException | None = None


def cgocallback(fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn(*args)`` on a new goroutine of the current run; return its
    value or raise its exception in the calling thread (which is not an M).

    ``NOTRUN`` if the run ended before the goroutine ran: fn had no effect.
    fn must not block (see the module's docstring).
    """
    gen = sched.generation
    if threading.get_ident() not in sched.cgothreads:
        sched.cgothreads[threading.get_ident()] = threading.current_thread()
    call = _Call()
    gp = newproc1(_cgocallbackg, (call, fn, args), {})
    if sched.tracing:
        _trace.gocreate(gp, None, None)
    inject(sched.allp[0], gp)  # P0 lives as long as the run
    if sched.multi:
        wakep()  # an idle M may take it before P0's M gets to it
    while not call.done.wait(_POLL):
        if sched.generation != gen or not sched.running:
            break  # the run is over: its goroutines are gone
    err = call.error
    if err is not None:
        call.error = None  # no cycle through the traceback
        raise err
    return call.value


def _cgocallbackg(call: _Call, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """The borrowed goroutine's body: make the operation, report it."""
    try:
        call.value = fn(*args)
    except GreenletExit:
        raise  # the end of the run unwinding it before fn did anything: NOTRUN
    except BaseException as e:
        call.error = e
    finally:
        call.done.set()


# ---------------------------------------------------------------------------
# The channel operations, as chan.py and select.py delegate them. Each runs
# the non-blocking form in the goroutine; "would block" becomes the error a
# blocking call from a non-goroutine has always raised.

_WOULDBLOCK = object()


def chansend(c: Any, v: Any) -> None:
    from .chan import selectnbsend

    r = cgocallback(selectnbsend, c, v)
    if r is NOTRUN:
        c.send(v)
    elif not r:
        raise outside("gort.chan.send")


def chanrecv(c: Any, ok: bool) -> Any:
    r = cgocallback(_nbrecv, c)
    if r is NOTRUN:
        return c.recv(ok)
    if r is _WOULDBLOCK:
        raise outside("gort.chan.recv2" if ok else "gort.chan.recv")
    return r if ok else r[0]


def _nbrecv(c: Any) -> Any:
    from .select import default, select

    i, r = select(c.recv2, default)
    return r if i == 0 else _WOULDBLOCK


def chanclose(c: Any) -> None:
    if cgocallback(c.close) is NOTRUN:
        c.close()


def selectgo(cases: tuple[Any, ...], hasdefault: bool) -> tuple[int, Any]:
    from .select import default, select

    r = cgocallback(select, *cases, *(() if hasdefault else (default,)))
    if r is NOTRUN:
        return select(*cases)
    if not hasdefault and r[0] == len(cases):
        raise outside("gort.select")
    return r  # type: ignore[no-any-return]
