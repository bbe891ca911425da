"""The pytest plugin: a test function as goroutine 1 of its own run.

A test marked ``@pytest.mark.gort`` (or every test, with ``gort_mode = true``
in the ini file) is called inside a fresh ``gort.run``, so it can block on
channels, sleep and start goroutines as a Go test does. Around it:

* A panic fails the test with the original exception (pytest's assertion
  messages intact) and the goroutine dump as a note; a deadlock or a
  timeout fails it with the dump. ``GOTRACEBACK`` is ``all`` unless the
  environment says otherwise.
* After the test returns, goroutines still alive, threads started and
  descriptors opened during the test fail it, each with its stack or
  target (goleak's ``VerifyNone``). Leftovers get ``gort_leak_timeout``
  seconds to finish, except goroutines the leak finder proves blocked
  forever. ``@pytest.mark.gort_allow(*functions, threads=(), fds=())``
  names the exceptions (fnmatch patterns).
* Fixtures that are plain functions, function-scoped, and not needed by
  any other kind of fixture run inside the run too, just before the test,
  in pytest's order (their errors then fail the call, not the setup).
* With pytest-timeout, a gort test that times out is stopped by ending its
  run (the report has every goroutine's stack); pytest-timeout's own
  handler stays armed ``TIMEOUT_GRACE`` seconds later as a backstop.

The plugin is registered by the ``gort_pytest`` shim (see there for why).
"""

from __future__ import annotations

import fnmatch
import gc
import inspect
import os
import sys
import threading
import time
import traceback as _pytraceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pytest
from _pytest.outcomes import OutcomeException

from . import Deadlock, Fatal, Panic
from .runtime import proc
from .runtime.goroutineleak import leak_block, leaked_goroutines
from .runtime.runtime2 import G, sched
from .runtime.traceback import dump_all, format_goroutine, goroutine_frames
from .sleep import sleep

TIMEOUT_GRACE = 2.0  # seconds between our timeout and pytest-timeout's backstop
_FD_DIR = "/proc/self/fd"
_BACKOFF_MAX = 0.1  # seconds between two looks at leftovers (goleak's maxSleep)
_LEAKCHECK_AFTER = 0.02  # seconds of waiting before asking the leak finder

_deferred_key = pytest.StashKey["list[_Deferred]"]()
_eager_key = pytest.StashKey["set[str]"]()
_inrun_key = pytest.StashKey[bool]()
_deadline_key = pytest.StashKey[tuple[float, float]]()  # (monotonic deadline, timeout)


def configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "gort(procs=None, seed=None): run the test as goroutine 1 of a fresh gort.run",
    )
    config.addinivalue_line(
        "markers",
        "gort_allow(*functions, threads=(), fds=()): goroutines (by function), threads "
        "(by name) and descriptors (by target) a gort test may leave behind",
    )


def enabled(item: pytest.Item) -> bool:
    if not isinstance(item, pytest.Function):
        return False
    if inspect.iscoroutinefunction(item.obj) or inspect.isasyncgenfunction(item.obj):
        return False
    if item.get_closest_marker("gort") is not None:
        return True
    return bool(item.config.getini("gort_mode"))


# ---------------------------------------------------------------------------
# Fixtures that run inside the run.


class _Deferred:
    """A plain fixture's value, computed in goroutine 1 before the test."""

    __slots__ = ("func", "kwargs", "name", "value")

    def __init__(self, name: str, func: Callable[..., Any], kwargs: dict[str, Any]) -> None:
        self.name = name
        self.func = func
        self.kwargs = kwargs
        self.value: Any = self

    def resolve(self) -> Any:
        if self.value is self:
            self.value = self.func(**{k: _real(v) for k, v in self.kwargs.items()})
        return self.value

    def __repr__(self) -> str:
        return f"<fixture {self.name!r}, computed inside the gort run>"


def _real(v: Any) -> Any:
    return v.resolve() if isinstance(v, _Deferred) else v


def _plain(func: Callable[..., Any]) -> bool:
    return not (
        inspect.isgeneratorfunction(func)
        or inspect.iscoroutinefunction(func)
        or inspect.isasyncgenfunction(func)
    )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Find the fixtures that must stay outside the run: those another
    fixture that cannot be deferred (a generator, a wider scope) uses."""
    if not enabled(item):
        return
    assert isinstance(item, pytest.Function)
    item.stash[_deferred_key] = []
    defs = item._fixtureinfo.name2fixturedefs
    eager: set[str] = set()

    def pin(name: str) -> None:
        if name in eager or name not in defs:
            return
        eager.add(name)
        for dep in defs[name][-1].argnames:
            pin(dep)

    for name, fds in defs.items():
        fd = fds[-1]
        if len(fds) > 1 or fd.scope != "function" or not _plain(fd.func):
            pin(name)
    item.stash[_eager_key] = eager


@pytest.hookimpl(tryfirst=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[Any], request: Any) -> Any:
    item = request.node
    if (
        fixturedef.scope != "function"
        or not isinstance(item, pytest.Function)
        or _eager_key not in item.stash
        or item.stash.get(_inrun_key, False)
        or fixturedef.argname in item.stash[_eager_key]
    ):
        return None
    from _pytest.fixtures import resolve_fixture_function

    func = resolve_fixture_function(fixturedef, request)
    kwargs = {name: request.getfixturevalue(name) for name in fixturedef.argnames}
    d = _Deferred(fixturedef.argname, func, kwargs)
    item.stash[_deferred_key].append(d)
    fixturedef.cached_result = (d, fixturedef.cache_key(request), None)
    return d


# ---------------------------------------------------------------------------
# pytest-timeout.


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> bool | None:
    """Arm pytest-timeout's handler as a backstop; the run itself is
    stopped at the deadline by a watchdog (see _Watchdog)."""
    if not enabled(item):
        return None
    import pytest_timeout

    item.stash[_deadline_key] = (time.monotonic() + settings.timeout, settings.timeout)
    pytest_timeout.pytest_timeout_set_timer(
        item, settings._replace(timeout=settings.timeout + TIMEOUT_GRACE)
    )
    return True


class _Watchdog:
    """Ends the run at the test's deadline, keeping every goroutine's stack."""

    def __init__(self, deadline: float, timeout: float) -> None:
        self.timeout = timeout
        self.report = ""
        self.fired = False
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._fire)
        self._timer.daemon = True
        self._timer.name = "gort-test-watchdog"

    def start(self) -> None:
        self._timer.start()

    def cancel(self) -> None:
        self._timer.cancel()
        self._timer.join()

    def _fire(self) -> None:
        if not sched.running or sched.exiting:
            return
        self.report = _dump_retrying()
        self.fired = True
        proc.exitprogram("fatal", f"test timed out after {self.timeout:g}s")


def _dump_retrying() -> str:
    """dump_all from a thread that does not own the run (allgs may change)."""
    for _ in range(10):
        try:
            return dump_all()
        except RuntimeError:  # allgs changed size while being read
            continue
    return "(goroutines kept changing; no dump)"


# ---------------------------------------------------------------------------
# The run.


@dataclass
class _Allow:
    functions: tuple[str, ...] = ()
    threads: tuple[str, ...] = ()
    fds: tuple[str, ...] = ()

    @classmethod
    def of(cls, item: pytest.Item) -> _Allow:
        allow = cls()
        for mark in item.iter_markers("gort_allow"):
            allow.functions += tuple(mark.args)
            allow.threads += tuple(mark.kwargs.get("threads", ()))
            allow.fds += tuple(mark.kwargs.get("fds", ()))
        return allow

    def goroutine(self, gp: G) -> bool:
        if not self.functions:
            return False
        names = [_qualname(gp.fn)]
        for frame, _ in goroutine_frames(gp) or []:
            names.append(f"{frame.f_globals.get('__name__', '?')}.{frame.f_code.co_qualname}")
        return _matches(names, self.functions)


def _qualname(fn: Any) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def _matches(names: Iterable[str], patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(n, p) for n in names for p in patterns)


@dataclass
class _TestRun:
    """One gort test: what goroutine 1 runs, and what it found."""

    item: pytest.Function
    allow: _Allow
    leak_timeout: float
    outcome: BaseException | None = None  # pytest.skip/fail/xfail raised by the test
    crash: str = ""  # the panic or fatal error text, with every goroutine
    leftover: str = ""  # goroutines alive after the test, with their stacks
    me: G | None = None

    def main(self, test: Callable[..., Any], funcargs: dict[str, Any]) -> None:
        self.me = proc.getg("gort.testing")
        sched.on_crash = self._on_crash
        if "GOTRACEBACK" not in os.environ:
            sched.debug.traceback = "all"
        self.item.stash[_inrun_key] = True
        try:
            for d in self.item.stash.get(_deferred_key, []):
                d.resolve()
                self.item.funcargs[d.name] = d.value
            test(**{k: _real(v) for k, v in funcargs.items()})
        except OutcomeException as e:
            self.outcome = e  # pytest.skip and friends are not panics
        finally:
            self.item.stash[_inrun_key] = False
        self.leftover = self._wait_for_leftovers()

    def _on_crash(self, text: str) -> bool:
        self.crash = text
        return True

    def _others(self) -> list[G]:
        return [
            gp
            for gp in sorted(list(sched.allgs.values()), key=_goid)
            if gp is not self.me and not self.allow.goroutine(gp)
        ]

    def _wait_for_leftovers(self) -> str:
        """goleak's VerifyNone: retry with backoff until nothing is left,
        or what is left is blocked forever, or the time is up."""
        start = time.monotonic()
        delay = 0.0005
        asked = False
        forever: set[int] = set()
        while True:
            others = self._others()
            if not others:
                return ""
            waited = time.monotonic() - start
            if not asked and waited >= _LEAKCHECK_AFTER:
                asked = True
                forever = {gp.goid for gp in leaked_goroutines()}
            if {gp.goid for gp in others} <= forever or waited >= self.leak_timeout:
                break
            sleep(delay)
            delay = min(delay * 2, _BACKOFF_MAX)
        if not asked:
            forever = {gp.goid for gp in leaked_goroutines()}
        blocks = [leak_block(gp) if gp.goid in forever else format_goroutine(gp) for gp in others]
        return (
            f"gort: {len(others)} goroutine(s) still alive after the test "
            f"(waited {time.monotonic() - start:.3f}s):\n\n" + "\n\n".join(blocks)
        )


def _goid(gp: G) -> int:
    return gp.goid


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if not enabled(pyfuncitem):
        return None
    funcargs = {arg: pyfuncitem.funcargs[arg] for arg in pyfuncitem._fixtureinfo.argnames}
    run_test(pyfuncitem, pyfuncitem.obj, funcargs)
    return True


def run_test(item: pytest.Function, test: Callable[..., Any], funcargs: dict[str, Any]) -> None:
    """Run test(**funcargs) as goroutine 1 and fail it the ways the module says."""
    mark = item.get_closest_marker("gort")
    procs = mark.kwargs.get("procs") if mark is not None else None
    seed = mark.kwargs.get("seed") if mark is not None else None
    state = _TestRun(item, _Allow.of(item), float(item.config.getini("gort_leak_timeout")))
    timing = item.stash.get(_deadline_key, None)
    watchdog = None
    if timing is not None:
        watchdog = _Watchdog(*timing)
        watchdog.start()
    threads_before = {t.ident for t in threading.enumerate()}
    fds_before = _open_fds()
    failure = ""
    try:
        _run_program(state, test, funcargs, procs, seed)
    except Panic as exc:
        _raise_panic(state, exc)
    except Fatal as exc:
        if watchdog is not None and watchdog.fired:
            failure = (
                f"Timeout (>{watchdog.timeout:g}s) from pytest-timeout.\n\n"
                f"goroutines at the timeout:\n\n{watchdog.report}"
            )
        else:
            kind = "deadlock" if isinstance(exc, Deadlock) else "fatal error"
            failure = state.crash or f"{kind}: {exc}"
    finally:
        if watchdog is not None:
            watchdog.cancel()
    if failure:
        pytest.fail(failure.rstrip(), pytrace=False)
    if state.outcome is not None:
        raise state.outcome
    problems = [state.leftover] if state.leftover else []
    problems += _leftover_threads(threads_before, state)
    problems += _leftover_fds(fds_before, state.allow)
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


def _run_program(
    state: _TestRun,
    test: Callable[..., Any],
    funcargs: dict[str, Any],
    procs: int | None,
    seed: int | None,
) -> None:
    from .runtime.startup import run

    run(state.main, test, funcargs, procs=procs, seed=seed)


def _raise_panic(state: _TestRun, exc: Panic) -> None:
    """Re-raise what the goroutine raised, with the goroutines as a note."""
    cause = exc.__cause__
    if isinstance(cause, OutcomeException):
        raise cause from None
    _, _, dump = state.crash.partition("\n\n")  # the text after "panic: <message>"
    if cause is None or not isinstance(cause, Exception):
        pytest.fail(state.crash or f"panic: {exc}", pytrace=False)
    cause.add_note(f"\ngoroutines at the panic:\n\n{dump.rstrip()}" if dump else f"panic: {exc}")
    raise cause from None


def _leftover_threads(before: set[int | None], state: _TestRun) -> list[str]:
    """Threads started during the test and still running, with their stacks."""
    deadline = time.monotonic() + state.leak_timeout
    delay = 0.0005
    while True:
        new = [
            t
            for t in threading.enumerate()
            if t.ident not in before
            and t.is_alive()
            and not _matches([t.name], state.allow.threads)
        ]
        if not new or time.monotonic() >= deadline:
            break
        time.sleep(delay)
        delay = min(delay * 2, _BACKOFF_MAX)
    if not new:
        return []
    frames = sys._current_frames()
    blocks = []
    for t in new:
        f = frames.get(t.ident or 0)
        stack = "".join(_pytraceback.format_stack(f)) if f is not None else "  (no stack)\n"
        blocks.append(f"thread {t.name!r} (ident {t.ident}):\n{stack.rstrip()}")
    return [
        f"gort: {len(new)} thread(s) started by the test still running:\n\n" + "\n\n".join(blocks)
    ]


def _open_fds() -> dict[int, str]:
    """Open descriptors and their targets (Linux's /proc; empty elsewhere)."""
    out: dict[int, str] = {}
    try:
        names = os.listdir(_FD_DIR)
    except OSError:
        return out
    for name in names:
        try:
            out[int(name)] = os.readlink(f"{_FD_DIR}/{name}")
        except (OSError, ValueError):
            continue  # the directory's own descriptor, closed by now
    return out


def _leftover_fds(before: dict[int, str], allow: _Allow) -> list[str]:
    def new() -> dict[int, str]:
        return {
            fd: target
            for fd, target in _open_fds().items()
            if before.get(fd) != target and not _matches([target], allow.fds)
        }

    found = new()
    if found:
        gc.collect()  # a file in a garbage cycle closes when the cycle goes
        found = new()
    if not found:
        return []
    lines = [f"  fd {fd} -> {target}" for fd, target in sorted(found.items())]
    return [f"gort: {len(found)} descriptor(s) opened by the test still open:\n" + "\n".join(lines)]
