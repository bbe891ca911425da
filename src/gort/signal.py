"""Go's os/signal: deliver signals to channels.

``notify(ch, *signals)`` makes the runtime send each listed signal (a
``signal.Signals`` value) to ``ch`` as it arrives, without blocking: give
the channel room (``gort.chan(1)``), a full channel misses the signal, as
in Go. ``stop(ch)`` ends that. Without notify, SIGINT (Ctrl-C) ends the
program: ``run`` raises KeyboardInterrupt once the goroutines are unwound,
and a second Ctrl-C cuts that unwinding short.
"""

from __future__ import annotations

import signal as _signal

from .runtime import sigqueue as _sigqueue
from .runtime.chan import Chan

Signals = _signal.Signals
SIGINT = _signal.SIGINT
SIGTERM = _signal.SIGTERM
SIGHUP = _signal.SIGHUP

__all__ = ["SIGHUP", "SIGINT", "SIGTERM", "Signals", "notify", "stop"]


def notify(ch: Chan, *signals: int) -> None:
    """Relay the given signals to ch (os/signal.Notify).

    Unlike Go, the signals must be named (Python cannot catch every
    signal), and ``notify`` must run while ``gort.run`` was called on the
    main thread (only it may set signal handlers).
    """
    if not isinstance(ch, Chan):
        raise TypeError(f"gort.signal.notify: {ch!r} is not a gort channel")
    if not signals:
        raise TypeError("gort.signal.notify: name the signals to relay, e.g. signal.SIGINT")
    nums = []
    for s in signals:
        if not isinstance(s, int) or isinstance(s, bool):
            raise TypeError(f"gort.signal.notify: {s!r} is not a signal")
        nums.append(int(_signal.Signals(s)))
    _sigqueue.notify(ch, tuple(nums))


def stop(ch: Chan) -> None:
    """Stop relaying signals to ch (os/signal.Stop)."""
    _sigqueue.stop(ch)
