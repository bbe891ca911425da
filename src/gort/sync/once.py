"""sync.Once, OnceFunc, OnceValue (mirrors sync/once.go and sync/oncefunc.go)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from .mutex import Mutex

T = TypeVar("T")


class Once:
    """Runs a function exactly once (Go's sync.Once).

    ``do(f)`` calls f if no ``do`` on this Once has called a function yet;
    concurrent callers wait until that first call has returned, so every
    caller sees its effects. A call that raises still counts: later
    ``do`` calls return at once, as Go's Once does after a panic.
    """

    __slots__ = ("__weakref__", "_m", "done")

    def __init__(self) -> None:
        self.done = False
        self._m = Mutex()

    def do(self, f: Callable[[], Any]) -> None:
        if self.done:
            return
        self._do_slow(f)

    def _do_slow(self, f: Callable[[], Any]) -> None:
        with self._m:
            if not self.done:
                try:
                    f()
                finally:
                    self.done = True


def once_func(f: Callable[[], Any]) -> Callable[[], None]:
    """A function that calls f only once (Go 1.21 sync.OnceFunc).

    If f raises, every call of the returned function raises the same
    exception (Go re-panics with the same value on every call).
    """
    once = Once()
    failure: list[BaseException] = []

    def g() -> None:
        def first() -> None:
            try:
                f()
            except BaseException as e:
                failure.append(e)
                raise

        once.do(first)
        if failure:
            raise failure[0]

    return g


def once_value(f: Callable[[], T]) -> Callable[[], T]:
    """A function that calls f once and returns its value on every call
    (Go 1.21 sync.OnceValue; for several values, return a tuple). If f
    raises, every call raises the same exception."""
    once = Once()
    result: list[T] = []
    failure: list[BaseException] = []

    def g() -> T:
        def first() -> None:
            try:
                result.append(f())
            except BaseException as e:
                failure.append(e)
                raise

        once.do(first)
        if failure:
            raise failure[0]
        return result[0]

    return g
