"""sysmon: the system monitor (proc.go: sysmon, retake).

An M with no P, on its own thread. It wakes with Go's back-off: every 20 us
at first, doubling after 50 rounds, up to 10 ms. When every M is idle it sleeps until one wakes up
(``sched.sysmonwait``), so an idle program costs no CPU. Each round:

* ``retake``: a P whose ``schedtick`` has not moved for ``FORCE_PREEMPT_NS``
  has a goroutine that used up its time slice: preempt it (preempt.py).
* The blocking detector: a P whose ``switches`` has not moved for the
  threshold (100 ms, ``GODEBUG=blockthreshold``) is held by a goroutine
  that neither parks nor yields (a blocking call not routed through
  ``gort.syscall``, or a long computation): report it once, with its stack,
  read from its thread with ``sys._current_frames()``.
* ``GODEBUG=schedtrace=MS``: print the SCHED line every MS.
* The scavenger (mgcscavenge.py): returns idle heap pages to the OS, paced
  to about 1% of a CPU; while every M sleeps, sysmon sleeps until the
  scavenger's next unit of work is due.

On a GIL build each wake-up takes the GIL from the running M for a moment;
the back-off keeps that to 100 wake-ups a second in steady state.
"""

from __future__ import annotations

import dis
import itertools
import linecache
import sys
import threading
from time import monotonic
from types import FrameType

from . import schedtrace, sigqueue
from .mgcscavenge import scavenger
from .preempt import Preempter
from .proc import _gbody, ready_remote
from .runtime2 import FORCE_PREEMPT_NS, G, Note, P, sched
from .traceback import WAITSINCE_PERIOD, format_frames, is_runtime_file, stamp_waiting

SYSMON_MIN_DELAY = 20e-6  # seconds
SYSMON_MAX_DELAY = 10e-3
SYSMON_IDLE_ROUNDS = 50  # rounds with nothing to do before the delay starts doubling
FORCE_PREEMPT = FORCE_PREEMPT_NS / 1e9
SYSMON_POLL_PERIOD = 10e-3  # proc.go sysmon: lastpoll+10*1000*1000 < now


class Sysmon:
    def __init__(self, preempter: Preempter) -> None:
        self.note = Note()
        self.thread: threading.Thread | None = None
        self.stopping = False
        self.preempter = preempter
        self.warned: set[int] = set()  # goids the blocking detector reported
        # P id -> (switches seen, since when, last sighting)
        self.held: dict[int, tuple[int, float, float]] = {}
        # P id -> (switches, id of the innermost frame, its f_lasti, how many
        # looks in a row saw it there; 0: it moved): _sample_call's, for
        # report_blocked. The frame's id, not the frame: no locals kept alive.
        self.calls: dict[int, tuple[int, int, int, int]] = {}

    def start(self) -> None:
        self.thread = threading.Thread(target=self.loop, name="gort-sysmon", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping = True
        self.note.wakeup()
        if self.thread is not None:
            self.thread.join()

    def wake(self) -> None:
        self.note.wakeup()

    def loop(self) -> None:
        period = sched.debug.schedtrace_ms / 1000
        nexttrace = sched.starttime if period else float("inf")  # Go: first line at once
        delay = SYSMON_MIN_DELAY
        idle = 0
        nextscav = float("inf")
        nextstamp = 0.0  # stamping blocked goroutines for dumps' wait time
        while not self.stopping:
            if idle == 0:
                delay = SYSMON_MIN_DELAY
            elif idle > SYSMON_IDLE_ROUNDS:
                delay = min(delay * 2, SYSMON_MAX_DELAY)
            if self._all_idle():
                self._deep_sleep(min(nexttrace, nextscav, nextstamp))
                idle = 0
            else:
                self.note.sleep(delay)
            if self.stopping:
                return
            if sigqueue._pending:
                sigqueue.sigdispatch()
            now = monotonic()
            self.retake(now)
            nextscav = scavenger.tick(now)  # returns free pages to the OS, paced
            self.poll(now)
            if now >= nextstamp:
                nextstamp = now + stamp_waiting(now) if sched.allgs else now + WAITSINCE_PERIOD
            # As in Go, only a P retaken from a syscall resets the back-off,
            # not a preemption, and gort's design never retakes a P: sysmon
            # settles at 10 ms a round (it took the GIL every 20 us while a
            # CPU-bound goroutine kept it preempting).
            idle += 1
            if now >= nexttrace:
                self._trace(now)
                nexttrace = now + period  # as Go: a period after the last line

    def poll(self, now: float) -> None:
        """Poll the network if nobody has for 10 ms (every M busy running
        goroutines): the goroutines it readies go to their home Ps."""
        poll = sched.netpoll
        last = sched.lastpoll
        if poll is None or not last or now - last < SYSMON_POLL_PERIOD:
            return
        sched.lastpoll = now
        for gp in poll(0.0):
            ready_remote(gp)

    def _all_idle(self) -> bool:
        return sched.nmidle >= sched.mcount

    def _deep_sleep(self, nexttrace: float) -> None:
        """Sleep while every M sleeps (stopm wakes us when one gets up)."""
        sched.sysmonwait = True
        if self._all_idle() and not self.stopping:  # re-check after announcing
            timeout = -1.0 if nexttrace == float("inf") else max(0.0, nexttrace - monotonic())
            self.note.sleep(timeout)
        sched.sysmonwait = False

    def retake(self, now: float) -> None:
        """Preempt long-running goroutines; report blocked Ps."""
        for pp in sched.allp:
            m = pp.m
            if m is None or m.parked or not m.ident:
                self.held.pop(pp.id, None)
                continue
            tick = pp.schedtick
            if tick != pp.sysmontick:
                pp.sysmontick = tick
                pp.sysmonwhen = now
            elif now - pp.sysmonwhen >= FORCE_PREEMPT:
                self.preemptone(pp)
                pp.sysmonwhen = now  # signal again in a time slice, not every round
            self._check_blocked(pp, now)

    def preemptone(self, pp: P) -> None:
        pp.preempt = True
        sched.multi = True  # channel operations now take the path that checks
        if pp.m is sched.m0 and (sched.exiting or not sched.debug.asyncpreemptoff):
            pp.preempt_async = True
            self.preempter.preempt_m0()

    def _check_blocked(self, pp: P, now: float) -> None:
        """Report pp if sysmon watched it held, without a switch, for the threshold.

        Watched: a gap between two sightings longer than half the threshold
        means sysmon itself could not run (a garbage collection or a C call
        holding the GIL stops every thread), not that a goroutine blocked,
        so the watch starts again.
        """
        switches = pp.switches
        threshold = sched.debug.block_threshold
        seen = self.held.get(pp.id)
        if seen is None or seen[0] != switches or now - seen[2] > threshold / 2:
            self.held[pp.id] = (switches, now, now)
            return
        self.held[pp.id] = (switches, seen[1], now)
        held = now - seen[1]
        if held >= threshold / 2:
            self._sample_call(pp, switches)
        if held >= threshold:
            self.report_blocked(pp, held)

    def _sample_call(self, pp: P, switches: int) -> None:
        """Look at where pp's goroutine is, every round of the second half of
        a hold: a call it is seen in at every look is what holds the M (a
        computation moves between instructions from one look to the next)."""
        m = pp.m
        found = _running_g(sys._current_frames().get(m.ident)) if m is not None else None
        if found is None or not found[1] or found[0].goid in self.warned:
            return
        frame = found[1][0][0]
        at = (switches, id(frame), frame.f_lasti)
        prev = self.calls.get(pp.id)
        if prev is None or prev[0] != switches:
            self.calls[pp.id] = (*at, 1)
        elif prev[3] and prev[1:3] == at[1:]:
            self.calls[pp.id] = (*at, prev[3] + 1)
        else:
            self.calls[pp.id] = (*at, 0)  # it moved: no single call holds it

    def report_blocked(self, pp: P, held: float) -> None:
        """One warning per goroutine, with the stack it is stuck in."""
        m = pp.m
        if m is None:
            return
        top = sys._current_frames().get(m.ident)
        found = _running_g(top)
        if found is None:
            return
        gp, frames = found
        if gp.goid in self.warned:
            return
        self.warned.add(gp.goid)
        from .traceback import created_by

        text = [
            f"runtime: goroutine {gp.goid} held P{pp.id} for {int(held * 1000)}ms "
            "without yielding (a blocking call outside gort.syscall?)",
            f"goroutine {gp.goid} [running]:",
            *format_frames(frames),
            *created_by(gp),
        ]
        sample = self.calls.pop(pp.id, None)
        call = None
        if frames and sample is not None and sample[3] >= 2 and sample[1] == id(frames[0][0]):
            call = held_by(frames[0][0])
        if call is not None:
            text.append(
                f"runtime: the M is held by the call {call}: run it on a syscall helper "
                f"with gort.monkey.offload({call.partition('(')[0]})(...) or gort.syscall"
            )
        try:
            sys.stderr.write("\n".join(text) + "\n\n")
            sys.stderr.flush()
        except Exception:
            pass

    def _trace(self, now: float) -> None:
        text = schedtrace.detail(now) if sched.debug.scheddetail else schedtrace.line(now)
        try:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()
        except Exception:
            pass


def held_by(frame: FrameType) -> str | None:
    """The call frame is making, as its source spells the callee, with where
    (``hashlib.scrypt(...) at x.py:12``); None when frame is not in a call
    (a computation holds the M, not a library). With ``co_positions`` the
    call instruction spans the whole call expression; the callee is the
    text before its first parenthesis."""
    code = frame.f_code
    i = frame.f_lasti // 2
    raw = code.co_code
    if not 0 <= 2 * i < len(raw) or not dis.opname[raw[2 * i]].startswith(("CALL", "PRECALL")):
        return None
    pos = next(itertools.islice(code.co_positions(), i, None), None)
    if pos is None or None in pos:
        return None
    line, _, col, _ = pos
    src = linecache.getline(code.co_filename, line)  # type: ignore[arg-type]
    callee = src[col:].partition("(")[0].strip()
    if not callee or not all(p.isidentifier() for p in callee.split(".")):
        return None
    return f"{callee}(...) at {code.co_filename}:{line}"


def _running_g(top: FrameType | None) -> tuple[G, list[tuple[FrameType, int]]] | None:
    """The G a thread runs, found from its innermost frame, and G's frames.

    A goroutine's bottom frame is ``_gbody``, whose local ``gp`` is the G.
    """
    frames: list[tuple[FrameType, int]] = []
    frame = top
    while frame is not None:
        if frame.f_code is _gbody.__code__:
            gp = frame.f_locals.get("gp")
            return (gp, frames) if gp is not None else None
        if not is_runtime_file(frame.f_code.co_filename):
            frames.append((frame, frame.f_lineno))
        frame = frame.f_back
    return None
