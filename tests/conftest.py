"""Shared fixtures for the runtime-core tests.

* ``procs``: every semantic test runs once with GOMAXPROCS=1 and once with 2.
* The Go environment variables of the developer's shell are cleared for each test, so
  ``GOMAXPROCS``/``GOTRACEBACK``/``GODEBUG`` never change what a test sees by accident.
* An ``assert`` that fails inside a goroutine reaches ``gort.run`` as a panic: run raises
  ``gort.Panic`` with the ``AssertionError`` as ``__cause__``. When such a Panic escapes a
  test, the hook below reports the AssertionError itself (with pytest's rewritten message
  and the goroutine's traceback), so a failing check inside ``main`` reads like any other.
"""

from __future__ import annotations

import sys
from collections.abc import Generator, Iterator

import pytest

import gort

GO_ENV = ("GOMAXPROCS", "GOTRACEBACK", "GODEBUG")


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
