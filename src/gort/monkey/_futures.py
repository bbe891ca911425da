"""Patched ``concurrent.futures``: a ThreadPoolExecutor's workers are goroutines.

The executor starts its workers with ``threading.Thread`` and feeds them
through ``queue.SimpleQueue``; with threading and queue patched they are
goroutines parking on the queue. What remains is the worker loop itself:
CPython's logs any BaseException that ends it as "Exception in worker",
which would report the runtime unwinding an idle worker at the end of the
run (GreenletExit) as an error. This module's loop has the same contract
(work items, the idle semaphore, the None wake-up, the initializer's
failure) and lets that unwinding through.
"""

from __future__ import annotations

import weakref
from typing import Any

from greenlet import GreenletExit

from ..runtime.panic import Goexit
from ..runtime.runtime2 import sched
from ._core import _originals
from ._queue import patch_queue
from ._threading import patch_thread


def _worker(
    executor_reference: weakref.ref[Any], work_queue: Any, initializer: Any, initargs: Any
) -> None:
    from concurrent.futures import _base
    from concurrent.futures import thread as _thread_mod

    if initializer is not None:
        try:
            initializer(*initargs)
        except BaseException:
            _base.LOGGER.critical("Exception in initializer:", exc_info=True)
            executor = executor_reference()
            if executor is not None:
                executor._initializer_failed()
            return
    try:
        while True:
            item = work_queue.get(block=True)
            if item is not None:
                item.run()
                del item
                executor = executor_reference()
                if executor is not None:
                    executor._idle_semaphore.release()  # one more idle worker
                del executor
                continue
            # None: the interpreter or the executor shuts down, or the
            # executor was collected; pass the wake-up on to the next worker.
            executor = executor_reference()
            if _thread_mod._shutdown or executor is None or executor._shutdown:
                if executor is not None:
                    executor._shutdown = True
                work_queue.put(None)
                return
            del executor
    except Goexit:
        raise
    except GreenletExit:
        if sched.exiting:
            raise  # the run's end unwinding an idle worker: no error
        _base.LOGGER.critical("Exception in worker", exc_info=True)
    except BaseException:
        _base.LOGGER.critical("Exception in worker", exc_info=True)


def patch_futures() -> bool:
    """ThreadPoolExecutor runs its work items on goroutines."""
    if "concurrent.futures" in _originals:
        return False
    patch_thread()
    patch_queue()
    from concurrent.futures import thread as _thread_mod

    _originals["concurrent.futures"] = {"_worker": _thread_mod._worker}
    _thread_mod._worker = _worker
    return True
