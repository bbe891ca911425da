"""SIGQUIT: dump every goroutine and exit 2 (runtime/signal_unix.go: sighandler).

A Go program that receives SIGQUIT (Ctrl-\\ in a terminal, ``kill -QUIT``)
prints ``SIGQUIT: quit`` and the stack of every goroutine, then exits with
status 2: the way to ask a stuck program where it is stuck. GOTRACEBACK=none
keeps only the first line, as in Go. Go also prints the signalled thread's
registers (``PC=... m=0 sigcode=0``); a Python program has none to show.

The handler is installed for the length of a run, on the main thread (the
only one Python delivers signals to), and the previous handler comes back
when the run ends. The dump is written with the process still running, so a
goroutine on another M that is running shows ``goroutine running on other
thread; stack unavailable``, as Go's do.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType
from typing import Any

from .runtime2 import sched
from .traceback import dump_all

EXIT_STATUS = 2  # Go's exit status after a fatal signal dump


def _on_sigquit(signum: int, frame: FrameType | None) -> None:
    try:
        sys.stdout.flush()
    except Exception:
        pass
    text = "SIGQUIT: quit\n"
    if sched.debug is None or sched.debug.traceback != "none":
        text += "\n" + dump_all() + "\n"
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    finally:
        os._exit(EXIT_STATUS)


def install() -> None:
    """Take SIGQUIT for this run (main thread only); the run's close hooks
    put the previous handler back. A program that chose its own handler
    (signal.signal before run) keeps it."""
    if not hasattr(signal, "SIGQUIT") or threading.current_thread() is not threading.main_thread():
        return
    old: Any = signal.getsignal(signal.SIGQUIT)
    if old not in (signal.SIG_DFL, None):
        return
    signal.signal(signal.SIGQUIT, _on_sigquit)

    def restore() -> None:
        if signal.getsignal(signal.SIGQUIT) is _on_sigquit:
            signal.signal(signal.SIGQUIT, old)

    sched.close_hooks.append(restore)
