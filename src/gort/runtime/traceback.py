"""Goroutine stack dumps in Go's layout (runtime/traceback.go).

A Go programmer reads (the file lines start with a tab)::

    goroutine 6 [chan receive]:
    main.worker(...)
        /tmp/x.py:20
    created by main.main in goroutine 1
        /tmp/x.py:8

Frames of gort itself are hidden, as Go hides runtime frames unless
GOTRACEBACK=system: the user's question is where *their* code waits.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from time import monotonic
from types import FrameType, TracebackType

from greenlet import getcurrent

from .panic import outside
from .runtime2 import G_SYSCALL, G_WAITING, GSTATUS_STRINGS, G, sched

_GORT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def is_runtime_file(filename: str) -> bool:
    """True for gort's own source files (hidden from dumps)."""
    return filename.startswith(_GORT_DIR)


def _funcname(frame: FrameType) -> str:
    module = frame.f_globals.get("__name__", "?")
    return f"{module}.{frame.f_code.co_qualname}"


def _frame_lines(frame: FrameType, lineno: int) -> list[str]:
    return [f"{_funcname(frame)}(...)", f"\t{frame.f_code.co_filename}:{lineno}"]


def _walk(frame: FrameType | None) -> Iterator[tuple[FrameType, int]]:
    """Innermost first, as Go prints, skipping gort's frames."""
    while frame is not None:
        if not is_runtime_file(frame.f_code.co_filename):
            yield frame, frame.f_lineno
        frame = frame.f_back


def _walk_tb(tb: TracebackType | None) -> list[tuple[FrameType, int]]:
    frames: list[tuple[FrameType, int]] = []
    while tb is not None:
        if not is_runtime_file(tb.tb_frame.f_code.co_filename):
            frames.append((tb.tb_frame, tb.tb_lineno))
        tb = tb.tb_next
    frames.reverse()
    return frames


def status_string(gp: G) -> str:
    """The text in ``goroutine N [...]``: the wait reason when waiting."""
    if gp.status == G_WAITING and gp.waitreason:
        return gp.waitreason
    return GSTATUS_STRINGS.get(gp.status, "unknown")


def header(gp: G, status: str | None = None) -> str:
    """``goroutine N [status]:``, with Go's ``, N minutes`` for a goroutine
    blocked a minute or more (traceback.go goroutineheader)."""
    if status is None:
        status = status_string(gp)
        minutes = wait_minutes(gp)
        if minutes >= 1:
            status += f", {minutes} minutes"
    return f"goroutine {gp.goid} [{status}]:"


WAITSINCE_PERIOD = 10.0  # seconds between sysmon's stamps, at least
WAITSINCE_MAX_COST = 0.01  # the share of sysmon's time stamping may take


def wait_minutes(gp: G) -> int:
    """Whole minutes gp has been blocked, as far as sysmon's stamps tell."""
    if gp.status != G_WAITING and gp.status != G_SYSCALL:
        return 0
    since = getattr(gp, "waitsince", 0.0)
    return int((monotonic() - since) // 60) if since else 0


def stamp_waiting(now: float) -> float:
    """Stamp every blocked goroutine not stamped yet with now; returns the
    seconds until the next stamping is due.

    Go's garbage collector does this (mgcmark.go: ``gp.waitsince =
    work.tstart``), with a time it has already read; here sysmon does, with
    the time of its round, so parking never reads a clock. The walk's cost
    sets the period: at most WAITSINCE_MAX_COST of the time, and at least
    every WAITSINCE_PERIOD seconds, the precision of the minutes shown.
    """
    t0 = monotonic()
    for gp in list(sched.allgs.values()):
        if (gp.status == G_WAITING or gp.status == G_SYSCALL) and not getattr(gp, "waitsince", 0.0):
            gp.waitsince = now
    return max(WAITSINCE_PERIOD, (monotonic() - t0) / WAITSINCE_MAX_COST)


def created_by(gp: G) -> list[str]:
    if gp.created is None:
        return []
    code, line, module_globals, parent = gp.created
    module = module_globals.get("__name__", "?")
    return [
        f"created by {module}.{code.co_qualname} in goroutine {parent}",
        f"\t{code.co_filename}:{line}",
    ]


def goroutine_frames(gp: G) -> list[tuple[FrameType, int]] | None:
    """gp's frames, innermost first; None when they cannot be read."""
    gl = gp.glet
    if gl is None:
        return []
    frame = gl.gr_frame
    if frame is None:
        # Running: read it from its thread if it is the one running there.
        m = gp.p.m if gp.p is not None else None
        if m is None or not m.ident:
            return None
        frame = sys._current_frames().get(m.ident)
        if frame is None:
            return None
    return list(_walk(frame))


# Go 1.21's traceback: at most the 50 innermost and the 50 outermost frames
# (tracebackInnerFrames, tracebackOuterFrames), with the count of the rest.
INNER_FRAMES = 50
OUTER_FRAMES = 50


def format_frames(frames: Iterable[tuple[FrameType, int]]) -> list[str]:
    frames = list(frames)
    elided = len(frames) - INNER_FRAMES - OUTER_FRAMES
    lines: list[str] = []
    for i, (frame, lineno) in enumerate(frames):
        if elided > 0 and INNER_FRAMES <= i < INNER_FRAMES + elided:
            if i == INNER_FRAMES:
                lines.append(f"...{elided} frames elided...")
            continue
        lines.extend(_frame_lines(frame, lineno))
    return lines


def format_goroutine(gp: G, frames: list[tuple[FrameType, int]] | None = None) -> str:
    lines = [header(gp)]
    if frames is None:
        frames = goroutine_frames(gp)
    if frames is None:
        lines.append("\tgoroutine running on other thread; stack unavailable")
    else:
        lines.extend(format_frames(frames))
    lines.extend(created_by(gp))
    return "\n".join(lines)


def format_panic(gp: G, exc: BaseException) -> str:
    """The panicking goroutine's block: its frames come from the traceback."""
    frames = _walk_tb(exc.__traceback__)
    lines = [f"goroutine {gp.goid} [running]:"]
    lines.extend(format_frames(frames))
    lines.extend(created_by(gp))
    return "\n".join(lines)


def stack(all: bool = True) -> str:
    """gort.stack (runtime.Stack): the calling goroutine's stack first, as
    ``goroutine N [running]:``, then with ``all`` every other goroutine."""
    gp: G | None = getattr(getcurrent(), "gp", None)
    if gp is None:
        raise outside("gort.stack")
    lines = [f"goroutine {gp.goid} [running]:"]
    lines.extend(format_frames(_walk(sys._getframe(1))))
    lines.extend(created_by(gp))
    text = "\n".join(lines) + "\n"
    if all:
        others = dump_all(skip=gp)
        if others:
            text += "\n" + others + "\n"
    return text


def dump_all(skip: G | None = None) -> str:
    """Every live goroutine, main first, as Go's fatal errors print them."""
    blocks = []
    for goid in sorted(sched.allgs):
        gp = sched.allgs[goid]
        if gp is skip:
            continue
        blocks.append(format_goroutine(gp))
    return "\n\n".join(blocks)
