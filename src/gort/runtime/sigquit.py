"""SIGQUIT: dump every goroutine and exit 2 (runtime/signal_unix.go: sighandler).

A Go program that receives SIGQUIT (Ctrl-\\ in a terminal, ``kill -QUIT``)
prints ``SIGQUIT: quit`` and the stack of every goroutine, then exits with
status 2: the way to ask a stuck program where it is stuck. GOTRACEBACK=none
keeps only the first line, as in Go. Go also prints the signalled thread's
registers (``PC=... m=0 sigcode=0``); a Python program has none to show.

This is SIGQUIT's default action in sigqueue's ``DEFAULT_ACTIONS``: it runs
on sysmon's thread, so a program that notifies a channel of SIGQUIT
(``gort.signal.notify``) gets the signal instead, as in Go. Goroutines that
are running at that moment are read from their threads'
``sys._current_frames()``.
"""

from __future__ import annotations

import os
import sys

from .runtime2 import sched
from .traceback import dump_all

EXIT_STATUS = 2  # Go's exit status after a fatal signal dump


def dump_and_exit(signum: int) -> None:
    """Print ``SIGQUIT: quit`` and every goroutine to stderr, then exit 2."""
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
