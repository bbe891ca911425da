"""Go's testing/synctest: code under test in a bubble with a fake clock.

``run(fn)`` runs fn, and every goroutine it starts, in a bubble whose clock
(``gort.now()``, sleeps, timers, tickers, ``after``, ``after_func``, context
deadlines) stands still until every goroutine in the bubble is durably
blocked, then jumps to the next timer. ``wait()`` returns once every other
goroutine of the bubble is durably blocked. See docs/testing.md.
"""

from __future__ import annotations

from .runtime.synctest import run, wait

__all__ = ["run", "wait"]
