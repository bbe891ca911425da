"""Async preemption never switches away from C code (issue 6 B7): not inside a user
callback that a C function called (io.BufferedReader.read -> readinto), not during a
C call made with keyword arguments (3.13's CALL_KW), on every supported Python."""

from __future__ import annotations

import io
import sys
import threading
import time

import gort
from gort.runtime import preempt


class _SlowRaw(io.RawIOBase):
    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        # User code called back from C (BufferedReader.read holds the reader's
        # lock): computing for 10 time slices here invites a preemption.
        end = time.perf_counter() + 0.1
        while time.perf_counter() < end:
            pass
        b[:1] = b"x"
        return 1


def test_no_preemption_inside_a_callback_from_c() -> None:
    def main() -> str:
        r = io.BufferedReader(_SlowRaw(), buffer_size=1)
        done = gort.chan(1)

        def reader() -> None:
            r.read(1)
            done.send(None)

        gort.go(reader)
        gort.gosched()  # the reader runs first and computes inside read()
        try:
            r.read(1)  # a preempted reader would leave it locked: "reentrant call"
            out = "second read ok"
        except RuntimeError as e:
            out = f"RuntimeError: {e}"
        done.recv()
        return out

    assert gort.run(main, procs=1) == "second read ok"


def test_no_preemption_inside_a_c_call_with_keyword_arguments() -> None:
    def main() -> tuple[bool, bool]:
        lk = threading.Lock()
        lk.acquire()
        release = threading.Timer(0.3, lk.release)
        release.start()
        log: dict[str, float] = {}
        done = gort.chan(1)
        t0 = time.monotonic()

        def a() -> None:
            lk.acquire(timeout=5.0)  # blocks M0 in C; CALL_KW on 3.13
            log["a returned"] = time.monotonic() - t0
            done.send(None)

        gort.go(a)
        gort.gosched()  # a runs and blocks M0: main must not run before it returns
        log["main ran"] = time.monotonic() - t0
        done.recv()
        release.join()
        return log["main ran"] >= log["a returned"], log["main ran"] >= 0.25

    assert gort.run(main, procs=1) == (True, True)


def test_the_frame_walk_sees_c_frames_on_this_python() -> None:
    linked = preempt._linked
    assert linked is not None, "async preemption is off on a supported Python"
    seen: list[bool] = []

    def record(x: int) -> int:
        seen.append(linked(sys._getframe(), frozenset()))  # while the frame is live
        return x

    def plain() -> None:
        record(0)

    sorted([1], key=record)  # C (sorted) calls record back
    plain()  # Python calls record
    assert seen == [False, True]
