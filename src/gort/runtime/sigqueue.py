"""Signals (runtime/sigqueue.go and signal_unix.go; os/signal's loop).

Python runs a signal handler on the main thread between two bytecodes,
which may be in the middle of the runtime (a channel's lock held, a run
queue half updated). So the handler does nothing but record the signal in
``_pending`` and wake sysmon, the M without a P, which dispatches it
(``sigdispatch``) from its own thread, where taking locks is safe:

* A signal some channel was registered for with ``gort.signal.notify``
  goes to the notify loop goroutine (os/signal's ``loop``), which sends it
  to every such channel without blocking: a full channel misses it, as in
  Go.
* Otherwise the signal's default action runs (``DEFAULT_ACTIONS``). Go's
  default for SIGINT ends the program; here it ends the run in order, and
  ``run`` raises KeyboardInterrupt (the CLI exits with 130). A second
  SIGINT while the run is ending raises KeyboardInterrupt in the main
  thread at once, cutting slow finally-blocks short.

This is the one place for signal plumbing: another default action (a
SIGQUIT dump, say) is an entry in ``DEFAULT_ACTIONS``. Handlers are set only
when ``run`` is called on the main thread, and only over a signal's
default disposition (a program's own ``signal.signal`` handler is kept);
every handler is put back when the run ends.
"""

from __future__ import annotations

import signal
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from . import sigquit
from .proc import exitprogram, getg, newproc, ready_remote, schedule
from .runtime2 import G_SYSCALL, G, sched


def _interrupt(signum: int) -> None:
    exitprogram("interrupt", None)


# What a signal nobody is notified of does. Called on sysmon's thread.
DEFAULT_ACTIONS: dict[int, Callable[[int], None]] = {signal.SIGINT: _interrupt}
if hasattr(signal, "SIGQUIT"):
    DEFAULT_ACTIONS[signal.SIGQUIT] = sigquit.dump_and_exit  # dump every goroutine, exit 2

# Signals the handler saw and sysmon has not dispatched yet. The handler
# appends, sysmon pops: single deque operations, atomic under the GIL.
_pending: deque[int] = deque()


class SigState:
    """The signal state of one run; ``sched.signals``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()  # guards every field below
        self.watchers: dict[int, list[Any]] = {}  # signal -> channels, in notify order
        self.saved: dict[int, Any] = {}  # signal -> the handler before the run's
        self.inbox: deque[int] = deque()  # signals for the loop goroutine to deliver
        self.looping = False  # a loop goroutine exists (set by notify, cleared by the loop)
        self.loopg: G | None = None  # that goroutine, once it runs
        self.parked = False  # loopg waits for the inbox (readied by sigdispatch)

    def install(self, signum: int) -> bool:
        """Route signum to _handler for this run, over its default
        disposition only. Main thread only (Python's rule)."""
        if signum in self.saved:
            return True
        if threading.current_thread() is not threading.main_thread():
            return False
        old = signal.getsignal(signum)
        if old not in (signal.SIG_DFL, signal.default_int_handler, None):
            return False  # the program has its own handler: leave it
        signal.signal(signum, _handler)
        self.saved[signum] = old
        return True

    def watching(self) -> bool:
        """A notified channel may still receive a signal (checkdead: no deadlock)."""
        return any(self.watchers.values())

    def restore(self) -> None:
        """Put every handler back (a close hook of the run)."""
        for signum, old in self.saved.items():
            try:
                signal.signal(signum, old if old is not None else signal.SIG_DFL)
            except (ValueError, OSError):
                pass
        self.saved.clear()


def initsig() -> None:
    """At schedinit: handlers for the default actions (SIGINT ...)."""
    st = sched.signals = SigState()
    _pending.clear()
    for signum in DEFAULT_ACTIONS:
        st.install(signum)
    sched.close_hooks.append(st.restore)


def _handler(signum: int, frame: object) -> None:
    """The handler of every signal the run routes (main thread, any bytecode)."""
    st: SigState | None = sched.signals
    unwatched = st is None or not st.watchers.get(signum)
    if signum == signal.SIGINT and unwatched and (sched.exiting or signum in _pending):
        raise KeyboardInterrupt  # a second Ctrl-C: stop waiting for the orderly end
    _pending.append(signum)
    mon = sched.sysmon
    if mon is not None:
        mon.wake()  # a Note: releasing a lock never blocks


def sigdispatch() -> None:
    """Deliver the pending signals (sysmon's thread)."""
    st: SigState | None = sched.signals
    while _pending:
        signum = _pending.popleft()
        if st is None:
            continue
        ready = None
        with st.lock:
            if st.watchers.get(signum):
                st.inbox.append(signum)
                if st.parked:
                    st.parked = False
                    ready = st.loopg
                notified = True
            else:
                notified = False
        if ready is not None:
            ready_remote(ready)
        if not notified:
            action = DEFAULT_ACTIONS.get(signum)
            if action is not None:
                action(signum)


def notify(ch: Any, signums: tuple[int, ...]) -> None:
    """Relay signums to ch (gort.signal.notify)."""
    getg("gort.signal.notify")
    st: SigState = sched.signals
    for signum in signums:
        if not st.install(signum):
            raise RuntimeError(
                f"gort.signal.notify: cannot handle {signal.Signals(signum).name}: "
                "handlers can only be set while gort.run runs on the main thread, "
                "and a handler the program set itself is left alone"
            )
    start = False
    with st.lock:
        for signum in signums:
            chans = st.watchers.setdefault(signum, [])
            if not any(c is ch for c in chans):
                chans.append(ch)
        if not st.looping:
            st.looping = start = True
    if start:
        newproc(_loop, st)


def stop(ch: Any) -> None:
    """Stop relaying any signal to ch (gort.signal.stop)."""
    getg("gort.signal.stop")
    st: SigState = sched.signals
    wake = None
    with st.lock:
        for chans in st.watchers.values():
            chans[:] = [c for c in chans if c is not ch]
        if not any(st.watchers.values()) and st.parked:
            st.parked = False
            wake = st.loopg  # no watcher left: the loop ends
    if wake is not None:
        ready_remote(wake)


def _loop(st: SigState) -> None:
    """os/signal's loop: wait for signals, send each to its channels without
    blocking. Parks in state ``syscall``, as Go's signal_recv does."""
    from .select import default, select

    gp = getg("gort.signal")
    with st.lock:
        st.loopg = gp
    while True:
        with st.lock:
            signum = st.inbox.popleft() if st.inbox else None
            if signum is None:
                if not any(st.watchers.values()):
                    st.loopg = None
                    st.looping = False
                    return
                st.parked = True
            chans = list(st.watchers.get(signum, ())) if signum is not None else []
        if signum is None:
            gp.status = G_SYSCALL
            gp.waitreason = ""
            schedule(gp, gp.p)  # sigdispatch readies it (possibly before this switch)
            continue
        value = signal.Signals(signum)
        for ch in chans:
            select((ch.send, value), default)
