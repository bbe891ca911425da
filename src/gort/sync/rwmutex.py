"""sync.RWMutex (mirrors sync/rwmutex.go).

``reader_count`` counts readers holding or waiting for the lock; a writer
that wants the lock subtracts ``MAX_READERS`` from it, so every later
``rlock`` sees a negative count and waits: a waiting writer blocks new
readers (writer preference), and readers that arrived while a writer
waited or held the lock all get in when it unlocks, before the next writer.
``reader_wait`` is how many of the readers active when the writer arrived
must still leave; the last one wakes the writer. Writers exclude each
other with a Mutex (``_w``).

With one M the counter updates need no atomics; with several they are made
under a per-object thread lock (never held across a park), as in mutex.py.
"""

from __future__ import annotations

import threading
from types import TracebackType

from ..runtime.proc import fatal
from ..runtime.runtime2 import sched
from ..runtime.sema import (
    WAIT_SYNC_RWMUTEX_LOCK,
    WAIT_SYNC_RWMUTEX_RLOCK,
    Sema,
    semacquire,
    semrelease,
)
from .mutex import Mutex

MAX_READERS = 1 << 30  # rwmutex.go rwmutexMaxReaders

_guards = threading.Lock()


class RWMutex:
    """A reader/writer lock (Go's sync.RWMutex).

    Any number of readers (``rlock``/``runlock``) or one writer
    (``lock``/``unlock``, or ``with rw:``). A blocked ``lock`` call keeps new
    readers out until it has had the lock, so writers are not starved. A
    goroutine must not rlock again while it holds a read lock (a writer
    waiting in between would deadlock it), as in Go.
    """

    __slots__ = ("__weakref__", "_guard", "_reader_sem", "_w", "_writer_sem", "rc", "rwait")

    def __init__(self) -> None:
        self._w = Mutex()
        self._writer_sem = Sema()
        self._reader_sem = Sema()
        self.rc = 0  # readers holding or waiting; -MAX_READERS while a writer is pending
        self.rwait = 0  # readers a pending writer still waits for
        self._guard: threading.Lock | None = None

    def __repr__(self) -> str:
        rc = self.rc
        writer = rc < 0
        readers = rc + MAX_READERS if writer else rc
        return f"<gort.RWMutex readers={readers} writer={'pending/held' if writer else 'no'}>"

    def _g(self) -> threading.Lock:
        g = self._guard
        if g is None:
            with _guards:
                g = self._guard
                if g is None:
                    g = self._guard = threading.Lock()
        return g

    def _add_rc(self, delta: int) -> int:
        if sched.multi:
            with self._g():
                self.rc += delta
                return self.rc
        self.rc += delta
        return self.rc

    def _add_rwait(self, delta: int) -> int:
        if sched.multi:
            with self._g():
                self.rwait += delta
                return self.rwait
        self.rwait += delta
        return self.rwait

    def rlock(self) -> None:
        """Lock for reading; waits while a writer holds or waits for the lock."""
        if self._add_rc(1) < 0:
            semacquire(
                self._reader_sem,
                False,
                WAIT_SYNC_RWMUTEX_RLOCK,
                "gort.RWMutex.rlock",
                self._rabort,
            )

    def try_rlock(self) -> bool:
        """rlock if that needs no waiting (Go 1.18 TryRLock)."""
        if sched.multi:
            with self._g():
                if self.rc < 0:
                    return False
                self.rc += 1
                return True
        if self.rc < 0:
            return False
        self.rc += 1
        return True

    def runlock(self) -> None:
        """Undo one rlock."""
        r = self._add_rc(-1)
        if r < 0:
            self._runlock_slow(r)

    def _runlock_slow(self, r: int) -> None:
        if r + 1 == 0 or r + 1 == -MAX_READERS:
            self._add_rc(1)
            fatal("sync: RUnlock of unlocked RWMutex")
        # A writer is pending: the last reader it waits for wakes it.
        if self._add_rwait(-1) == 0:
            semrelease(self._writer_sem)

    def _rabort(self, woken: bool) -> None:
        """A reader unwound while parked (the end of a run)."""
        if woken:
            self.runlock()  # the writer let it in: it holds a read lock
        else:
            # Still counted in rc, as a reader the writer's unlock will let
            # in: uncount it, so that unlock releases one unit fewer.
            self._add_rc(-1)

    def lock(self) -> None:
        """Lock for writing; waits for the current readers and writer to leave."""
        self._w.lock()
        # Announce the writer: from now on rlock waits.
        r = self._add_rc(-MAX_READERS) + MAX_READERS
        if r != 0 and self._add_rwait(r) != 0:
            semacquire(
                self._writer_sem,
                False,
                WAIT_SYNC_RWMUTEX_LOCK,
                "gort.RWMutex.lock",
                self._wabort,
            )

    def _wabort(self, woken: bool) -> None:
        """A writer unwound while parked (the end of a run)."""
        if woken:
            self.unlock()  # the last reader let it in: it holds the lock
            return
        # It still waits for rwait active readers: withdraw the claim and let
        # in the readers that queued behind it (all but the active ones).
        if sched.multi:
            with self._g():
                waiting = self._withdraw()
        else:
            waiting = self._withdraw()
        for _ in range(waiting):
            semrelease(self._reader_sem)
        self._w.unlock()

    def _withdraw(self) -> int:
        self.rc += MAX_READERS
        waiting = self.rc - self.rwait
        self.rwait = 0
        return waiting

    def try_lock(self) -> bool:
        """lock if that needs no waiting (Go 1.18 TryLock)."""
        if not self._w.try_lock():
            return False
        if sched.multi:
            with self._g():
                ok = self.rc == 0
                if ok:
                    self.rc = -MAX_READERS
        else:
            ok = self.rc == 0
            if ok:
                self.rc = -MAX_READERS
        if not ok:
            self._w.unlock()
        return ok

    def unlock(self) -> None:
        """Unlock for writing; the readers that waited all get in."""
        r = self._add_rc(MAX_READERS)
        if r >= MAX_READERS:
            self._add_rc(-MAX_READERS)
            fatal("sync: Unlock of unlocked RWMutex")
        for _ in range(r):
            semrelease(self._reader_sem)
        self._w.unlock()

    __enter__ = lock

    def __exit__(
        self,
        et: type[BaseException] | None,
        ev: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.unlock()

    def rlocker(self) -> RLocker:
        """A Locker whose lock/unlock are this RWMutex's rlock/runlock."""
        return RLocker(self)


class RLocker:
    """rw.rlocker(): lock() is rw.rlock(), unlock() is rw.runlock()."""

    __slots__ = ("_rw",)

    def __init__(self, rw: RWMutex) -> None:
        self._rw = rw

    def lock(self) -> None:
        self._rw.rlock()

    def unlock(self) -> None:
        self._rw.runlock()

    def __enter__(self) -> None:
        self._rw.rlock()

    def __exit__(
        self,
        et: type[BaseException] | None,
        ev: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._rw.runlock()
