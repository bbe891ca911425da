"""sync.Cond (mirrors sync/cond.go, on the runtime's notifyList)."""

from __future__ import annotations

from typing import Protocol

from ..runtime.sema import (
    NotifyList,
    notify_list_add,
    notify_list_notify_all,
    notify_list_notify_one,
    notify_list_wait,
)


class Locker(Protocol):
    """Go's sync.Locker: anything with lock() and unlock()."""

    def lock(self) -> None: ...

    def unlock(self) -> None: ...


class Cond:
    """A condition variable (Go's sync.Cond): ``cond.l`` is its Locker.

    ``wait()`` unlocks ``l``, parks until signalled, and locks ``l`` again
    before returning; since another goroutine may have run in between,
    callers wait in a loop: ``while not condition(): cond.wait()``.
    """

    __slots__ = ("__weakref__", "_notify", "l")

    def __init__(self, l: Locker) -> None:  # noqa: E741 (Go's field name)
        self.l = l
        self._notify = NotifyList()

    def wait(self) -> None:
        t = notify_list_add(self._notify)  # before unlocking: no signal is lost
        self.l.unlock()
        try:
            notify_list_wait(self._notify, t, "gort.Cond.wait")
        finally:
            self.l.lock()

    def signal(self) -> None:
        """Wake one waiting goroutine, if there is one."""
        notify_list_notify_one(self._notify)

    def broadcast(self) -> None:
        """Wake every waiting goroutine."""
        notify_list_notify_all(self._notify)
