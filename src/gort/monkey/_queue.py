"""Patched ``queue``: every queue parks the goroutine.

``Queue``, ``LifoQueue`` and ``PriorityQueue`` are written on
``threading.Lock`` and ``threading.Condition``, looked up when a queue is
made: with threading patched they park goroutines as they are. Only
``SimpleQueue`` is C (``_queue``); it becomes the standard library's own
pure-Python version, built on ``threading.Semaphore``.
"""

from __future__ import annotations

import queue as _queue_mod

from ._core import _originals
from ._threading import patch_thread


def patch_queue() -> bool:
    """queue.SimpleQueue parks goroutines (the others do once threading is patched)."""
    if "queue" in _originals:
        return False
    patch_thread()  # the queues are built on threading's primitives
    _originals["queue"] = {"SimpleQueue": _queue_mod.SimpleQueue}
    _queue_mod.SimpleQueue = _queue_mod._PySimpleQueue  # type: ignore[attr-defined, misc]
    return True
