"""Patched ``threading`` and ``_thread``: a Thread is a goroutine, a lock
parks the goroutine, never its M.

How (gevent's plan, on gort's scheduler): CPython's ``Condition``,
``Event``, ``Semaphore``, ``BoundedSemaphore``, ``Barrier``, ``Timer`` and
the pure-Python ``RLock`` are written on three primitives looked up in the
module's globals at call time: ``_allocate_lock``, ``get_ident`` and
``_start_new_thread`` (with ``_set_sentinel``, the lock a thread holds
while it lives; on 3.13+ ``_start_joinable_thread`` and ``_ThreadHandle``,
whose join waits for such a lock). Replacing those with goroutine-aware versions makes every
class above park goroutines with CPython's exact semantics (values, order,
timeouts, error texts), and objects made after patching work in both
worlds: each primitive takes the original path outside a goroutine (before
or after ``gort.run``, on a plain OS thread).

* ``Lock`` is a real OS lock (the state, atomic for every thread) plus a
  queue of parked goroutines. A goroutine that finds it taken queues itself,
  tries once more and parks; ``release`` unlocks the OS lock, then wakes the
  first queued goroutine, which tries again (CPython's locks are not FIFO
  either: a newcomer may barge). An OS thread simply blocks on the OS lock.
  A timeout is a runtime timer on the goroutine's P (``_Deadline``).
* ``get_ident`` is the goroutine's goid (goroutine 1, the program's main,
  keeps the ident of the thread that called ``gort.run``: ``current_thread``
  there is ``main_thread()``). Goids are small; OS thread idents are
  addresses, so the two never collide.
* ``Thread.start`` in a goroutine starts a goroutine (``gort.go``);
  ``join`` parks on the sentinel lock, which the goroutine releases when
  it ends (or the run's end does, for one that never resumed).

gort's runtime keeps using real threads and locks: patching first makes a
frozen copy of the original module (``_frozen``: every function and class
of ``threading`` re-created over a copy of its globals, sharing its state:
``_active``, ``_main_thread``...) and points the ``threading`` global of
gort's own modules at it. The runtime's Ms, sysmon and syscall helpers are
instances of the frozen classes, which is also how ``enumerate`` leaves
them out.
"""

from __future__ import annotations

import _thread
import importlib.util
import sys
import threading as _threading_mod
import types
import weakref
from collections import deque
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from greenlet import GreenletExit, getcurrent

from ..runtime.panic import Goexit
from ..runtime.proc import current_g, newproc, ready, ready_remote, schedule
from ..runtime.runtime2 import G_WAITING, WAIT_SEMACQUIRE, G, sched
from ..runtime.time import TimerState, readytimer
from ._core import _live_instances, _originals, _warn_late, in_goroutine

_oslock = _thread.allocate_lock
_os_get_ident = _thread.get_ident
_os_start_new_thread = _thread.start_new_thread

# Guards every Lock's goroutine queue and every waiter's fields, held for a
# few field updates, never across a park. One for all: the queues are
# touched only on contended paths, and OS threads (which may release a Lock
# a goroutine waits for) race with the Ms even when sched.multi is False.
_guard = _oslock()


# ---------------------------------------------------------------------------
# Lock: an OS lock plus a queue of parked goroutines.


class _Waiter:
    """A goroutine parked on a Lock. ``q`` is the queue it is in (None once
    a waker or its deadline took it out); ``timedout`` is set by the
    deadline. Both under _guard."""

    __slots__ = ("g", "q", "timedout")

    def __init__(self, g: G) -> None:
        self.g = g
        self.q: deque[_Waiter] | None = None
        self.timedout = False


class _Deadline(TimerState):
    """The timer of an acquire with a timeout, on the waiter's P's heap."""

    __slots__ = ("w",)
    w: _Waiter

    def _fire(self, now: float) -> None:
        w: _Waiter = self.w
        with _guard:
            w.timedout = True
            q = w.q
            if q is None:
                return  # a release woke it already: it retries and sees timedout
            q.remove(w)
            w.q = None
        readytimer(w.g)  # on the heap owner's M: the waiter's own P


def _wakeup(g: G) -> None:
    """Make a waiter runnable from wherever the waking call runs."""
    if current_g() is None:
        ready_remote(g)  # an OS thread that runs no goroutines, or a g0
    else:
        ready(g)


def _wake_one(q: deque[_Waiter]) -> None:
    """Take the first waiter off q and make it runnable (it will retry).

    A waiter whose goroutine is not of this run (one the end of a run
    abandoned without unwinding it) is dropped, never readied."""
    allgs = sched.allgs
    with _guard:
        while q:
            w = q.popleft()
            w.q = None
            if allgs.get(w.g.goid) is w.g:
                break
        else:
            return
    _wakeup(w.g)


_probe = _oslock()  # acquire's arguments are checked by an OS lock's own acquire


class Lock:
    """``threading.Lock`` / ``_thread.allocate_lock`` that parks goroutines."""

    __slots__ = ("__weakref__", "_block", "_waitq")

    def __init__(self) -> None:
        self._block = _oslock()
        self._waitq: deque[_Waiter] = deque()  # goroutines parked on it (_guard)

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if blocking is True and timeout == -1:
            if self._block.acquire(False):
                return True
        else:
            if not blocking or timeout == 0:
                return self._block.acquire(blocking, timeout)  # its own checks and words
            with _guard:  # CPython's checks and words for a bad timeout
                if _probe.acquire(True, timeout):
                    _probe.release()
            if self._block.acquire(False):
                return True
        gp = current_g()
        if gp is None:
            return self._block.acquire(True, timeout)  # an OS thread blocks, as ever
        return _park(self, gp, timeout)

    def release(self) -> None:
        self._block.release()  # RuntimeError("release unlocked lock") as CPython
        if self._waitq:
            _wake_one(self._waitq)

    def locked(self) -> bool:
        return self._block.locked()

    __enter__ = acquire  # as the C lock's: acquire() with its defaults

    def __exit__(self, *exc: object) -> None:
        self._block.release()  # release(), inlined: `with` is the common use
        if self._waitq:
            _wake_one(self._waitq)

    def _is_owned(self) -> bool:
        """For Condition (notify/wait's check): what its fallback for a lock
        without an owner computes, taken and given back, in one call."""
        return self._block.locked()

    def _at_fork_reinit(self) -> None:
        self._block._at_fork_reinit()  # type: ignore[attr-defined]
        self._waitq.clear()

    # CPython's deprecated aliases, which some libraries still call.
    acquire_lock = acquire
    release_lock = release
    locked_lock = locked

    def __repr__(self) -> str:
        state = "locked" if self._block.locked() else "unlocked"
        return f"<{state} gort.monkey.Lock object at {id(self):#x}>"


# Goroutines parked in _park (_guard). With a plain OS thread alive that
# may release their lock, checkdead must not call them deadlocked.
_parked = [0]


def _may_wake() -> bool:
    """sched.may_wake: a parked goroutine may be woken by an OS thread the
    runtime does not run (one started outside gort.run)."""
    if not _parked[0]:
        return False
    m0 = sched.m0
    own = m0.ident if m0 is not None else None
    for ident, t in list(_threading_mod._active.items()):  # type: ignore[attr-defined]
        if ident == own or ident in _sentinels or _is_gort_thread(t):
            continue
        if t.is_alive():
            return True
    return False


def _park(lk: Lock, gp: G, timeout: float) -> bool:
    """Acquire lk from goroutine gp, parking until it is free or timeout
    (seconds; -1: none) has passed."""
    _hook_run()
    w = _Waiter(gp)
    dl: _Deadline | None = None
    if timeout >= 0:
        dl = _Deadline()
        dl.w = w
        dl._arm(gp.p, timeout)
    try:
        while True:
            with _guard:
                # Queued before the last try (release does not take _guard:
                # it unlocks, then looks at the queue): a release after the
                # try finds w queued, one before it lets the try succeed.
                q = lk._waitq
                q.append(w)
                w.q = q
                if lk._block.acquire(False):
                    q.remove(w)
                    w.q = None
                    return True
                if w.timedout:
                    q.remove(w)
                    w.q = None
                    return False
                gp.status = G_WAITING
                gp.waitreason = WAIT_SEMACQUIRE
                _parked[0] += 1
            try:
                schedule(gp, gp.p)
            except BaseException:
                _leave(lk, w)
                raise
            finally:
                with _guard:
                    _parked[0] -= 1
    finally:
        if dl is not None:
            dl.stop()


def _leave(lk: Lock, w: _Waiter) -> None:
    """A parked acquire was unwound: leave the queue; a wake-up already
    given to it goes to the next waiter, so none is lost."""
    with _guard:
        q = w.q
        if q is not None:
            q.remove(w)
            w.q = None
            return
    if lk._waitq and not lk._block.locked():
        _wake_one(lk._waitq)


# ---------------------------------------------------------------------------
# Identity: get_ident, current_thread, enumerate.


def get_ident() -> int:
    """The goroutine's goid in a goroutine (goroutine 1: the ident of the
    thread that called gort.run); the OS thread's ident elsewhere."""
    gp = getattr(getcurrent(), "gp", None)
    if gp is None or gp.goid == 1:
        return _os_get_ident()
    return gp.goid  # type: ignore[no-any-return]


# The dummy Thread of a goroutine that was not started by threading:
# (its G, the Thread). Held by the goroutine's own context, so it lives and
# dies with it; the G in it tells a copy inherited by a child goroutine.
_dummy: ContextVar[tuple[G, Any]] = ContextVar("gort.monkey.thread")


def current_thread() -> Any:
    """The Thread a goroutine was started by, or its own dummy Thread."""
    gp = current_g()
    if gp is None or gp.goid == 1:
        return _orig("current_thread")()
    t = _threading_mod._active.get(gp.goid)  # type: ignore[attr-defined]
    if t is not None:
        return t
    d = _dummy.get(None)
    if d is not None and d[0] is gp:
        return d[1]
    t = _GoroutineThread(gp)
    _dummy.set((gp, t))
    _dummies.add(t)
    return t


_dummies: weakref.WeakSet[Any] = weakref.WeakSet()


def _enumerate() -> list[Any]:
    """Every live Thread, goroutines included, gort's own threads left out."""
    with _threading_mod._active_limbo_lock:  # type: ignore[attr-defined]
        ts = list(_threading_mod._active.values()) + list(_threading_mod._limbo.values())  # type: ignore[attr-defined]
    out = [t for t in ts if not _is_gort_thread(t)]
    out.extend(t for t in list(_dummies) if t.is_alive())
    return out


def _is_gort_thread(t: Any) -> bool:
    """One of the runtime's own threads (an M, sysmon, a syscall helper):
    made by the frozen module, or before patching (a patch during a run)."""
    return isinstance(t, _frozen.Thread) or str(getattr(t, "_name", "")).startswith("gort-")


def _late_objects() -> int:
    """What the program made with threading before patching and still uses:
    its running threads, and its queues (their locks stay OS locks)."""
    n = 0
    main = _threading_mod.main_thread()
    for t in list(_threading_mod._active.values()):  # type: ignore[attr-defined]
        if t is not main and not _is_gort_thread(t) and t.is_alive():
            n += 1
    q = sys.modules.get("queue")
    if q is not None:
        for cls in (q.Queue, q.LifoQueue, q.PriorityQueue):
            n += _live_instances(cls)
    return n


def active_count() -> int:
    return len(_enumerate())


# ---------------------------------------------------------------------------
# Starting goroutines: _start_new_thread, _set_sentinel.

# Sentinel locks of running goroutine threads, by goid: released by the
# goroutine's end, or by the run's end for one that never resumed (else
# threading._shutdown would wait for it at interpreter exit).
_sentinels: dict[int, _Sentinel] = {}
_sentinel_var: ContextVar[_Sentinel | None] = ContextVar("gort.monkey.sentinel", default=None)
_hooked_generation = 0


def _start_new_thread(
    function: Callable[..., Any], args: tuple[Any, ...], kwargs: Any = None
) -> Any:
    """threading's _start_new_thread: a goroutine in a goroutine."""
    if not in_goroutine():
        if kwargs is None:
            return _os_start_new_thread(function, args)
        return _os_start_new_thread(function, args, kwargs)
    if not isinstance(args, tuple):
        raise TypeError("2nd arg must be a tuple")
    if kwargs is not None and not isinstance(kwargs, dict):
        raise TypeError("optional 3rd arg must be a dictionary")
    _hook_run()
    newproc(_thread_body, function, args, kwargs or {})
    return None


def _thread_body(
    function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    try:
        function(*args, **kwargs)
    except SystemExit:
        pass
    except Exception as e:
        # _thread's own report for a function that raised.
        hook: Any = sys.unraisablehook
        hook(
            _Unraisable(
                type(e),
                e,
                e.__traceback__,
                f"Exception ignored in thread started by {function!r}",
                None,
            )
        )
    finally:
        lock = _sentinel_var.get()
        if lock is not None:
            _sentinel_var.set(None)
            _sentinels.pop(get_ident(), None)
            _release_sentinel(lock)


class _Unraisable:
    __slots__ = ("err_msg", "exc_traceback", "exc_type", "exc_value", "object")

    def __init__(self, t: Any, v: Any, tb: Any, msg: str, obj: Any) -> None:
        self.exc_type, self.exc_value, self.exc_traceback = t, v, tb
        self.err_msg, self.object = msg, obj


def _set_sentinel() -> Any:
    """The lock a thread holds while it lives (join waits on it)."""
    gp = current_g()
    if gp is None or not sched.running:
        return _orig("_set_sentinel")()
    lock = _Sentinel()
    _sentinel_var.set(lock)
    _sentinels[gp.goid] = lock
    return lock


def _hook_run() -> None:
    """Once per run: its end settles the goroutine threads it left, and
    checkdead asks _may_wake."""
    global _hooked_generation
    if _hooked_generation == sched.generation:
        return
    with _guard:  # two Ms may get here at once
        if _hooked_generation != sched.generation:
            _hooked_generation = sched.generation
            sched.close_hooks.append(_run_ended)
            sched.may_wake.append(_may_wake)


def _run_ended() -> None:
    """Threads whose goroutine never resumed at the run's end: stopped."""
    active = _threading_mod._active  # type: ignore[attr-defined]
    for goid, lock in list(_sentinels.items()):
        _sentinels.pop(goid, None)
        t = active.get(goid)
        if t is not None and not isinstance(t, _frozen.Thread):
            active.pop(goid, None)
        _release_sentinel(lock)


# CPython 3.13+: Thread.start calls _start_joinable_thread(..., handle=)
# and join/is_alive go through the handle (a _thread._ThreadHandle).


class _Handle:
    """threading's ``_ThreadHandle`` for both worlds. A thread started
    outside a goroutine runs on the real handle in ``_os``; a goroutine
    thread's handle holds ``_done``, a Lock taken before the goroutine is
    made and released when it ends (or by the run's end, _run_ended), so
    join parks on it like on 3.12's sentinel lock. ``_done`` and ``_ident``
    are written once, by the starting goroutine and the new one."""

    __slots__ = ("__weakref__", "_done", "_ident", "_os")

    def __init__(self) -> None:
        self._os: Any = _orig_thread_handle()
        self._done: _Sentinel | None = None
        self._ident: int | None = None

    @property
    def ident(self) -> int | None:
        if self._done is None:
            return self._os.ident  # type: ignore[no-any-return]
        return self._ident

    def is_done(self) -> bool:
        lk = self._done
        if lk is None:
            return self._os.is_done()  # type: ignore[no-any-return]
        return not lk.locked()

    def join(self, timeout: float | None = None) -> None:
        lk = self._done
        if lk is None:
            self._os.join(timeout)
            return
        if self._ident == get_ident() and lk.locked():
            raise RuntimeError("Cannot join current thread")  # _thread's words
        if timeout is None:
            timeout = -1
        elif timeout < 0:
            timeout = 0
        if lk.acquire(True, timeout):
            lk.release()  # done stays visible to every other joiner

    def _set_done(self) -> None:
        lk = self._done
        if lk is None:
            self._os._set_done()
            return
        _release_sentinel(lk)


class _Sentinel(Lock):
    """The Lock a goroutine thread holds while it lives (join waits on it).
    Released once (_release_sentinel): a second release could take the hold
    a joiner has on it for a moment, which then fails to release it."""

    __slots__ = ("_fired",)

    def __init__(self) -> None:
        super().__init__()
        self._fired = False  # under _guard


def _release_sentinel(lk: _Sentinel) -> None:
    """Release lk, if none of the thread's end, the run's end and
    _set_done has yet."""
    with _guard:
        if lk._fired:
            return
        lk._fired = True
    lk.release()


def _orig_thread_handle() -> Any:
    return _thread._ThreadHandle()  # type: ignore[attr-defined]


def _start_joinable_thread(
    function: Callable[..., Any], handle: Any = None, daemon: bool = True
) -> Any:
    """threading's _start_joinable_thread (3.13+): a goroutine in a goroutine,
    an OS thread elsewhere (on the real handle inside a _Handle)."""
    os_start = _originals["_thread"]["start_joinable_thread"]
    if not in_goroutine() or (handle is not None and not isinstance(handle, _Handle)):
        if handle is None:
            return os_start(function, daemon=daemon)
        os_start(function, handle=getattr(handle, "_os", handle), daemon=daemon)
        return handle
    if handle is None:
        handle = _Handle()
    if handle._done is not None or handle._os.ident:
        raise RuntimeError("thread already started")
    lk = _Sentinel()
    lk.acquire()
    handle._done = lk
    _hook_run()
    newproc(_joinable_body, function, handle)
    return handle


def _joinable_body(function: Callable[..., Any], handle: _Handle) -> None:
    goid = get_ident()
    handle._ident = goid
    lk = handle._done
    assert lk is not None
    _sentinels[goid] = lk
    _sentinel_var.set(lk)
    _thread_body(function, (), {})


def _thread_start_new_thread(
    function: Callable[..., Any], args: tuple[Any, ...], kwargs: Any = None
) -> Any:
    """_thread.start_new_thread: returns the new thread's ident (a goid in a
    goroutine, known once the goroutine has started)."""
    if not in_goroutine():
        return _start_new_thread(function, args, kwargs)
    started: list[int] = []
    ev = Lock()
    ev.acquire()

    def first(*a: Any, **kw: Any) -> Any:
        started.append(get_ident())
        ev.release()
        return function(*a, **kw)

    _start_new_thread(first, args, kwargs)
    ev.acquire()
    return started[0]


def _make_invoke_excepthook() -> Callable[[Any], None]:
    """A Thread's excepthook call (Thread._bootstrap_inner calls it from a
    bare except). The runtime's own unwinding is no error: gort.goexit
    ends the thread quietly, and GreenletExit at the run's end goes on up,
    so that the goroutine is unwound rather than seen to swallow it."""
    invoke = _orig("_make_invoke_excepthook")()

    def invoke_excepthook(thread: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, GreenletExit) and sched.exiting:
            raise exc
        if isinstance(exc, Goexit):
            return
        invoke(thread)

    return invoke_excepthook


# ---------------------------------------------------------------------------
# The dummy Thread of a goroutine not started by threading.


def _goroutine_thread_class() -> type:
    base = _threading_mod.Thread

    class _GoroutineThread(base):  # type: ignore[misc, valid-type]
        """current_thread() of a goroutine gort.go started (CPython's
        _DummyThread for foreign threads): alive while the goroutine is."""

        def __init__(self, gp: G) -> None:
            base.__init__(self, name=f"goroutine-{gp.goid}", daemon=True)
            self._gort_g = gp
            self._started.set()
            self._set_ident()
            self._set_native_id()

        def _stop(self) -> None:
            pass

        def is_alive(self) -> bool:
            gp = self._gort_g
            return sched.running and sched.allgs.get(gp.goid) is gp

        def join(self, timeout: float | None = None) -> None:
            raise RuntimeError("cannot join a dummy thread")

    return _GoroutineThread


_GoroutineThread: Any = None


# ---------------------------------------------------------------------------
# The frozen copy of threading that gort's runtime uses.


def _rebind(value: Any, ns: dict[str, Any], classes: dict[type, type]) -> Any:
    """value with every function of module threading in it re-created over ns."""
    if isinstance(value, types.FunctionType) and value.__globals__ is vars(_threading_mod):
        f = types.FunctionType(
            value.__code__, ns, value.__name__, value.__defaults__, value.__closure__
        )
        f.__kwdefaults__ = value.__kwdefaults__
        f.__dict__.update(value.__dict__)
        f.__qualname__ = value.__qualname__
        return f
    if isinstance(value, (staticmethod, classmethod)):
        return type(value)(_rebind(value.__func__, ns, classes))
    if isinstance(value, property):
        return property(
            _rebind(value.fget, ns, classes),
            _rebind(value.fset, ns, classes),
            _rebind(value.fdel, ns, classes),
            value.__doc__,
        )
    if isinstance(value, type) and value.__module__ == "threading":
        return _rebind_class(value, ns, classes)
    return value


def _rebind_class(cls: type, ns: dict[str, Any], classes: dict[type, type]) -> type:
    done = classes.get(cls)
    if done is not None:
        return done
    bases = tuple(_rebind(b, ns, classes) for b in cls.__bases__)
    body = {
        k: _rebind(v, ns, classes)
        for k, v in vars(cls).items()
        if k not in ("__dict__", "__weakref__")
    }
    new = type(cls)(cls.__name__, bases, body)
    new.__qualname__ = cls.__qualname__
    classes[cls] = new
    return new


def _freeze() -> types.ModuleType:
    """A copy of the unpatched threading module for gort's runtime."""
    fz = types.ModuleType("threading", "threading as it was before gort.monkey (gort's own use)")
    ns = vars(fz)
    ns.update({k: v for k, v in vars(_threading_mod).items() if k not in ("__name__", "__doc__")})
    classes: dict[type, type] = {}
    for k, v in list(ns.items()):
        ns[k] = _rebind(v, ns, classes)
    return fz


_frozen: Any = None


def _point_runtime_at(fz: types.ModuleType) -> None:
    """gort's own modules use the frozen module from now on."""
    import gort.runtime.netpoll_epoll
    import gort.runtime.netpoll_selectors  # noqa: F401

    for name, mod in list(sys.modules.items()):
        if (
            mod is not None
            and (name == "gort" or name.startswith("gort."))
            and not name.startswith("gort.monkey")
            and getattr(mod, "threading", None) is _threading_mod
        ):
            mod.threading = fz  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------
# threading.local: the pure-Python implementation, over the patched names.


def _local_class() -> type:
    """_threading_local.local, loaded afresh so that it binds the patched
    current_thread and RLock (it imports them when it is loaded)."""
    spec = importlib.util.find_spec("_threading_local")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.local  # type: ignore[no-any-return]


_THREAD_NAMES = (
    "allocate_lock",
    "allocate",
    "get_ident",
    "start_new_thread",
    "start_new",
    "start_joinable_thread",
    "RLock",
    "_local",
)


def _orig(name: str) -> Any:
    return _originals["threading"][name]


def patch_thread() -> bool:
    """threading and _thread: Threads are goroutines, locks park goroutines.

    3.11 and 3.12 start a Thread with _start_new_thread and _set_sentinel,
    3.13+ with _start_joinable_thread and a _ThreadHandle: each gets its own.
    """
    global _frozen, _GoroutineThread
    if "threading" in _originals:
        return False
    t = _threading_mod
    _frozen = _freeze()
    _warn_late("threading", _late_objects)
    _point_runtime_at(_frozen)
    names = (
        "_allocate_lock",
        "Lock",
        "_CRLock",
        "get_ident",
        "_start_new_thread",
        "_set_sentinel",
        "_start_joinable_thread",
        "_ThreadHandle",
        "_make_invoke_excepthook",
        "current_thread",
        "currentThread",
        "enumerate",
        "active_count",
        "activeCount",
        "local",
    )
    _originals["threading"] = {n: getattr(t, n) for n in names if hasattr(t, n)}
    _originals["_thread"] = {n: getattr(_thread, n) for n in _THREAD_NAMES if hasattr(_thread, n)}
    _GoroutineThread = None
    replace: dict[str, Any] = {
        "_allocate_lock": Lock,
        "Lock": Lock,
        "_CRLock": None,  # RLock() is then the pure-Python _RLock, over Lock and get_ident
        "get_ident": get_ident,
        "_make_invoke_excepthook": _make_invoke_excepthook,
        "current_thread": current_thread,
        "currentThread": current_thread,
        "enumerate": _enumerate,
        "active_count": active_count,
        "activeCount": active_count,
    }
    if sys.version_info >= (3, 13):
        replace["_start_joinable_thread"] = _start_joinable_thread
        replace["_ThreadHandle"] = _Handle
    else:
        replace["_start_new_thread"] = _start_new_thread
        replace["_set_sentinel"] = _set_sentinel
    for name, value in replace.items():
        setattr(t, name, value)
    local = _local_class()  # after: it binds current_thread and RLock as it loads
    vars(t)["local"] = local
    _GoroutineThread = _goroutine_thread_class()
    thread_replace = {
        "allocate_lock": Lock,
        "allocate": Lock,
        "get_ident": get_ident,
        "start_new_thread": _thread_start_new_thread,
        "start_new": _thread_start_new_thread,
        "start_joinable_thread": _start_joinable_thread,
        "RLock": t._PyRLock,  # type: ignore[attr-defined]
        "_local": local,
    }
    for name, value in thread_replace.items():
        if hasattr(_thread, name):
            setattr(_thread, name, value)
    return True
