"""errgroup.Group (mirrors golang.org/x/sync/errgroup).

A group of goroutines working on subtasks of one task. A member's error is
the exception it raises (an ``Exception``: ``BaseException``s such as
``SystemExit`` or ``goexit`` keep their usual meaning), or an exception it
returns, as Go's ``func() error`` returns one (an instance, or a class such
as ``ctx.err()``'s). ``wait()`` returns the first error, or None.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .context import CancelCauseFunc, Context, with_cancel_cause
from .runtime.chan import Chan
from .runtime.panic import Panic
from .runtime.proc import newproc
from .runtime.select import default, select
from .sync.once import Once
from .sync.waitgroup import WaitGroup


def _is_error(r: Any) -> bool:
    return isinstance(r, BaseException) or (isinstance(r, type) and issubclass(r, BaseException))


class Group:
    """``g.go(fn, *args)`` runs members; ``g.wait()`` returns the first error.

    ``Group.with_context(parent)`` also returns a context that is cancelled
    (with the error as its cause) when a member fails, and when wait returns.
    ``set_limit(n)`` bounds the members running at once: ``go`` then waits
    for room, ``try_go`` returns False instead.
    """

    __slots__ = ("_cancel", "_err", "_err_once", "_sem", "_wg")

    def __init__(self) -> None:
        self._cancel: CancelCauseFunc | None = None
        self._wg = WaitGroup()
        self._sem: Chan | None = None  # a token per running member, with a limit
        self._err_once = Once()
        self._err: Any = None

    @classmethod
    def with_context(cls, parent: Context) -> tuple[Group, Context]:
        """A new Group and a child of parent cancelled by its first error."""
        ctx, cancel = with_cancel_cause(parent)
        g = cls()
        g._cancel = cancel
        return g, ctx

    def go(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        """Run fn(*args, **kwargs) in a new goroutine (waits for room under a limit)."""
        if self._sem is not None:
            self._sem.send(None)
        self._start(fn, args, kwargs)

    def try_go(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> bool:
        """Like go, but only if the limit has room now; False otherwise."""
        if self._sem is not None and select((self._sem.send, None), default)[0] == 1:
            return False
        self._start(fn, args, kwargs)
        return True

    def _start(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self._wg.add(1)
        newproc(self._run, fn, args, kwargs)

    def _run(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        try:
            try:
                r = fn(*args, **kwargs)
            except Exception as e:
                r = e
            if _is_error(r):
                self._fail(r)
        finally:
            if self._sem is not None:
                self._sem.recv()
            self._wg.done()

    def _fail(self, err: Any) -> None:
        def first() -> None:
            self._err = err
            if self._cancel is not None:
                self._cancel(err if isinstance(err, BaseException) else err())

        self._err_once.do(first)

    def set_limit(self, n: int) -> None:
        """At most n members at once; n < 0 removes the limit.

        Changing it while members run panics, as in Go.
        """
        if n < 0:
            self._sem = None
            return
        sem = self._sem
        if sem is not None and len(sem) != 0:
            raise Panic(
                f"errgroup: modify limit while {len(sem)} goroutines in the group are still active"
            )
        self._sem = Chan(n)

    def wait(self) -> Any:
        """Wait for every member; the first error, or None."""
        self._wg.wait()
        if self._cancel is not None:
            self._cancel(self._err if isinstance(self._err, BaseException) else None)
        return self._err
