"""gort.syscall: blocking calls off the processor (proc.go: entersyscall,
exitsyscall, handoffp, maxmcount).

Go hands the P to another M when an M blocks in a system call. A greenlet
cannot change threads, so gort does it the other way round: the blocking
call goes to a helper M (a thread with no P), and the goroutine parks in
state ``syscall`` while its P runs other goroutines. When the call returns,
the helper readies the goroutine on its home P (``ready_remote``).

Helper Ms are pooled and reused. Like Go's ``sched.maxmcount``, there are
at most ``MAX_MCOUNT`` threads; past that the program dies with Go's
``thread exhaustion``. checkdead counts calls in flight (``sched.nsyscall``):
a goroutine in a syscall is not asleep, it will come back.

Ordering that checkdead relies on: a helper readies the goroutine *before*
it decrements ``nsyscall`` under ``sched.lock``.
"""

from __future__ import annotations

import contextvars
import sys
import threading
from collections.abc import Callable
from typing import Any

from greenlet import GreenletExit, getcurrent

from .panic import outside
from .proc import _write_stderr, exitprogram, ready_remote, schedule
from .runtime2 import G_RUNNING, G_SYSCALL, MAX_MCOUNT, G, Note, sched


class _Call:
    """One blocking call and its outcome."""

    __slots__ = ("args", "ctx", "error", "fn", "generation", "gp", "kwargs", "result")

    def __init__(
        self, gp: G, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ):
        self.gp = gp
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.result: Any = None
        self.error: BaseException | None = None
        self.generation = sched.generation
        self.ctx = contextvars.copy_context()  # fn sees the caller's context vars


class _Helper:
    """A helper M: a thread that runs one blocking call at a time."""

    __slots__ = ("call", "note", "thread")

    def __init__(self) -> None:
        self.note = Note()
        self.call: _Call | None = None
        self.thread: threading.Thread | None = None


class SyscallPool:
    """The helper Ms of one run."""

    def __init__(self, limit: int | None = None) -> None:
        self.lock = threading.Lock()
        self.idle: list[_Helper] = []
        self.all: list[_Helper] = []
        self.limit = MAX_MCOUNT if limit is None else limit
        self.stopping = False

    @property
    def nthreads(self) -> int:
        return len(self.all)

    @property
    def nidle(self) -> int:
        return len(self.idle)

    def submit(self, call: _Call) -> bool:
        """Hand call to an idle helper, or a new one; False past the limit."""
        with self.lock:
            if self.idle:
                h = self.idle.pop()
            elif len(self.all) + sched.mcount + 1 >= self.limit:
                return False
            else:
                h = _Helper()
                h.thread = threading.Thread(
                    target=self._loop,
                    args=(h,),
                    name=f"gort-syscall-{len(self.all) + 1}",
                    daemon=True,
                )
                h.thread.start()  # may raise (no thread to be had): nothing counted yet
                self.all.append(h)
        h.call = call
        h.note.wakeup()
        return True

    def _loop(self, h: _Helper) -> None:
        while True:
            h.note.sleep()
            call = h.call
            if call is None:
                if self.stopping:
                    return
                continue
            h.call = None
            try:
                call.result = call.ctx.run(call.fn, *call.args, **call.kwargs)
            except BaseException as e:
                call.error = e
            with sched.lock:
                if sched.generation == call.generation:  # the run is still on
                    ready_remote(call.gp)
                    sched.nsyscall -= 1
            with self.lock:
                if self.stopping:
                    return
                self.idle.append(h)

    def stop(self) -> None:
        """Idle helpers exit and are joined; a helper still inside a call is
        left to finish it (a blocking call cannot be interrupted) and exits
        after, as a daemon thread."""
        with self.lock:
            self.stopping = True
            idle = list(self.idle)
            self.idle.clear()
        for h in idle:
            h.note.wakeup()
        for h in idle:
            if h.thread is not None:
                h.thread.join()


def syscall(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """Run ``fn(*args, **kwargs)`` on a helper thread; return its value.

    The calling goroutine waits in state ``syscall``; the others keep
    running. fn's exception is raised here, unchanged.
    """
    try:
        gp: G = getcurrent().gp
    except AttributeError:
        raise outside("gort.syscall") from None
    pool: SyscallPool = sched.syscalls
    call = _Call(gp, fn, args, kwargs)
    with sched.lock:
        sched.nsyscall += 1
    gp.status = G_SYSCALL
    gp.waitreason = ""
    try:
        submitted = pool.submit(call)
    except BaseException:
        submitted = None  # the helper thread could not start: the call is not in flight
        raise
    finally:
        if not submitted:
            with sched.lock:
                sched.nsyscall -= 1
            gp.status = G_RUNNING
    if not submitted:
        _thread_exhaustion(pool.limit)
    pp = gp.p
    pp.syscalltick += 1
    schedule(gp, pp)
    if call.error is not None:
        err = call.error
        call.error = None
        raise err
    return call.result


def _thread_exhaustion(limit: int) -> None:
    sys.stdout.flush()
    _write_stderr(
        f"runtime: program exceeds {limit}-thread limit\nfatal error: thread exhaustion\n"
    )
    exitprogram("fatal", "thread exhaustion")
    raise GreenletExit  # unwind the caller; the program is over
