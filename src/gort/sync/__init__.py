"""Go's package sync (and x/sync/semaphore), on the runtime's semaphores.

Every primitive parks the waiting goroutine (runtime/sema.py): a goroutine
waiting for a Mutex never blocks its thread, shows Go's wait reason in
goroutine dumps (``sync.Mutex.Lock``...), and counts as asleep for the
deadlock detector.
"""

from __future__ import annotations

from .cond import Cond, Locker
from .mutex import Mutex
from .once import Once, once_func, once_value
from .pool import Pool
from .rwmutex import RLocker, RWMutex
from .semaphore import Semaphore
from .waitgroup import WaitGroup

__all__ = [
    "Cond",
    "Locker",
    "Mutex",
    "Once",
    "Pool",
    "RLocker",
    "RWMutex",
    "Semaphore",
    "WaitGroup",
    "once_func",
    "once_value",
]
