"""Shared fixtures for the runtime-core tests.

* ``procs``: every semantic test runs once with GOMAXPROCS=1 and once with 2.
* The Go environment variables of the developer's shell are cleared for each test, so
  ``GOMAXPROCS``/``GOTRACEBACK``/``GODEBUG``/``GORT_SCHEDSEED`` never change what a
  test sees by accident.
* ``spread``: starts goroutines on every P of a GOMAXPROCS 2 run and checks that each P
  ran some (see ``Spread``).
* An ``assert`` that fails inside a goroutine reaches ``gort.run`` as a panic: run raises
  ``gort.Panic`` with the ``AssertionError`` as ``__cause__``. When such a Panic escapes a
  test, the hook below reports the AssertionError itself (with pytest's rewritten message
  and the goroutine's traceback), so a failing check inside ``main`` reads like any other.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Generator, Iterator

import pytest

import gort
from gort.runtime.proc import getg

GO_ENV = ("GOMAXPROCS", "GOTRACEBACK", "GODEBUG", "GORT_SCHEDSEED")


@pytest.fixture(params=[1, 2], ids=["P1", "P2"])
def procs(request: pytest.FixtureRequest) -> int:
    """The GOMAXPROCS value a semantic test runs with: ``gort.run(main, procs=procs)``."""
    value: int = request.param
    return value


@pytest.fixture
def fast_switch() -> Iterator[None]:
    """CPython hands the GIL between threads every microsecond: with GOMAXPROCS=2
    the runtime's code is interleaved at nearly every point where it could be."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


class Spread:
    """Starts goroutines on both Ps of a GOMAXPROCS 2 run, and proves it.

    Started the usual way, goroutines of a GOMAXPROCS 2 test nearly all run on
    the creator's P (its M starts them before another M wins the GIL), so such
    a test exercises one thread. ``go`` places them by blocking Ms on purpose
    (a direct blocking wait, which lets no other goroutine run on that M):

    1. the first half is started while the creator blocks its own M, so P1
       steals and starts every one of them; the last goroutine of this phase
       then blocks P1's M;
    2. the second half is started while P1 is blocked, so the creator's P
       starts all of them; then P1 is released.

    Every goroutine records the P it starts on; ``check`` asserts both ran some.
    """

    procs = 2
    TIMEOUT = 10.0

    def __init__(self) -> None:
        self.ran: Counter[int] = Counter()
        self._cond = threading.Condition()

    def _wrap(self, fn: Callable[[], object]) -> Callable[[], None]:
        def body() -> None:
            pid = getg("Spread.go").p.id
            with self._cond:
                self.ran[pid] += 1
                self._cond.notify_all()
            fn()

        return body

    def _wait(self, pred: Callable[[], bool], what: str) -> None:
        with self._cond:
            assert self._cond.wait_for(pred, self.TIMEOUT), f"{what}: {dict(self.ran)}"

    def go(self, *fns: Callable[[], object]) -> None:
        """Start fns (two or more) on both Ps; call from a goroutine on P0."""
        assert gort.gomaxprocs() == 2 and len(fns) >= 2
        assert getg("Spread.go").p.id == 0
        half = len(fns) // 2
        release = threading.Event()
        for fn in fns[:half]:
            gort.go(self._wrap(fn))
        blocked: list[int] = []

        def blocker() -> None:  # blocks P1's M once phase 1 has started
            with self._cond:
                blocked.append(getg("Spread.go").p.id)
                self._cond.notify_all()
            release.wait(self.TIMEOUT)

        gort.go(blocker)
        self._wait(lambda: self.ran[1] >= half and blocked == [1], "phase 1 never ran on P1")
        for fn in fns[half:]:
            gort.go(self._wrap(fn))
        deadline = time.monotonic() + self.TIMEOUT
        while self.ran[0] < len(fns) - half and time.monotonic() < deadline:
            gort.gosched()  # P0 starts phase 2 while P1 is blocked
        release.set()
        assert self.ran[0] == len(fns) - half, f"phase 2 did not run on P0: {dict(self.ran)}"

    def check(self) -> None:
        """Both Ps ran some of the goroutines (call after the run)."""
        assert sorted(self.ran) == list(range(self.procs)), f"goroutines per P: {dict(self.ran)}"


@pytest.fixture
def spread() -> Iterator[Spread]:
    """A ``Spread`` for one ``gort.run(main, procs=spread.procs)``; checked at teardown."""
    s = Spread()
    yield s
    s.check()


@pytest.fixture(autouse=True)
def _clean_go_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in GO_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Generator[None, object, object]:
    try:
        return (yield)
    except gort.Panic as exc:
        cause = exc.__cause__
        if isinstance(cause, AssertionError):
            cause.add_note(f"(failed inside a goroutine; gort.run raised gort.Panic: {exc!s})")
            raise cause from None
        raise
