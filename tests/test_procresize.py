"""gomaxprocs(n) at run time, like Go's procresize: the work keeps flowing
through every resize, and the Ms of removed Ps end once their goroutines have."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

import pytest

import gort
from gort.runtime import proc
from gort.runtime.proc import getg
from gort.runtime.runtime2 import P, sched


def _burst(out: gort.chan, n: int) -> int:
    for i in range(n):
        gort.go(out.send, i)
    return sum(out.recv() for _ in range(n))


def test_resizes_keep_every_goroutine_running() -> None:
    def main() -> list[tuple[int, int, int]]:
        out = gort.chan()
        seen = []
        for procs in (2, 1, 3, 1, 2):
            prev = gort.gomaxprocs(procs)
            seen.append((prev, gort.gomaxprocs(), _burst(out, 300)))
        return seen

    before = threading.active_count()
    assert gort.run(main, procs=1) == [
        (1, 2, 44850),
        (2, 1, 44850),
        (1, 3, 44850),
        (3, 1, 44850),
        (1, 2, 44850),
    ]
    assert threading.active_count() <= before  # the Ms of removed Ps have ended


def test_shrinking_keeps_started_goroutines_on_their_p() -> None:
    # A goroutine started on P1 and parked there must still finish after P1 is
    # removed: its greenlet lives on P1's thread, so that M stays until it ends.
    def main() -> str:
        gate, done = gort.chan(), gort.chan()

        def parked() -> None:
            gate.recv()
            done.send("finished")

        for _ in range(20):
            gort.go(parked)
        gort.gosched()
        gort.gomaxprocs(1)
        for _ in range(20):
            gate.send(None)
        return ",".join({done.recv() for _ in range(20)})

    assert gort.run(main, procs=2) == "finished"


def test_gomaxprocs_ignores_non_positive_values() -> None:
    def main() -> tuple[int, int, int]:
        return gort.gomaxprocs(0), gort.gomaxprocs(-1), gort.gomaxprocs()

    assert gort.run(main, procs=2) == (2, 2, 2)


# Regression tests for the shrinking bugs of issue 6 (B1, B9, B10, A1). Getting a
# goroutine onto P1: main keeps M0 busy outside the runtime (time.sleep holds P0
# but not the GIL), so M1 steals the goroutine main just made.


def _go_on_p1(fn: Callable[[], object]) -> object:
    """Run fn in a goroutine whose home is P1; return what it returned."""
    got = gort.chan()

    def probe() -> None:
        pid = getg("probe").p.id
        got.send((pid, fn() if pid == 1 else None))

    for _ in range(500):
        gort.go(probe)
        time.sleep(0.005)
        pid, value = got.recv()
        if pid == 1:
            return value
    raise AssertionError("no goroutine ever ran on P1")


def _wait_retired(pid: int) -> None:
    """Wait (bounded) until the M of the removed P pid has ended."""
    for _ in range(2000):
        if sched.allp[pid].m is None:
            return
        gort.sleep(0.001)
    raise AssertionError(f"P{pid}'s M never retired")


def test_timers_of_a_removed_p_still_fire() -> None:
    # Go's (*p).destroy moves the timers of a removed P (moveTimers): a Timer, a
    # Ticker and an after_func armed on P1 all fire after gomaxprocs(1).
    def main() -> tuple[object, ...]:
        fired = gort.chan(1)

        def arm() -> tuple[gort.Timer, gort.Ticker]:
            gort.after_func(0.1, lambda: fired.send(getg("after_func").p.id))
            return gort.Timer(0.1), gort.Ticker(0.05)

        timer, ticker = _go_on_p1(arm)  # type: ignore[misc]
        gort.gomaxprocs(1)
        _wait_retired(1)
        t = gort.after(10)
        got = (
            gort.select(timer.c.recv, t.recv)[0],
            gort.select(ticker.c.recv, t.recv)[0],
            gort.select(ticker.c.recv, t.recv)[0],
            gort.select(fired.recv, t.recv),
        )
        ticker.stop()
        return got

    assert gort.run(main, procs=2) == (0, 0, 0, (0, 0))


def test_a_lone_timer_of_a_removed_p_does_not_hang() -> None:
    def main() -> str:
        timer = _go_on_p1(lambda: gort.Timer(0.1))
        gort.gomaxprocs(1)
        _wait_retired(1)
        timer.c.recv()  # type: ignore[attr-defined]
        return "fired"

    assert gort.run(main, procs=2) == "fired"


def test_growing_while_an_m_retires_gives_the_p_an_m(monkeypatch: pytest.MonkeyPatch) -> None:
    # gomaxprocs(1) then (2) while P1's M is deciding to end: P1 must end up with a
    # running M, proved by a goroutine that runs there.
    retiring = threading.Event()
    original = proc._retire_done

    def slow_retire_done(pp: P) -> bool:
        done = original(pp)
        if done:
            retiring.set()
            time.sleep(0.05)  # widen the window between deciding and ending
        return done

    monkeypatch.setattr(proc, "_retire_done", slow_retire_done)

    def main() -> tuple[int, object, bool]:
        gort.gomaxprocs(1)
        assert retiring.wait(5)
        gort.gomaxprocs(2)
        ran = _go_on_p1(lambda: "ran on P1")
        m = sched.allp[1].m
        return gort.gomaxprocs(), ran, m is not None and m.thread is not None

    assert gort.run(main, procs=2) == (2, "ran on P1", True)


def test_goroutines_started_from_a_removed_p_run_on_a_live_one() -> None:
    # GOMAXPROCS is honoured at once: a goroutine left on P1 that starts new ones
    # after gomaxprocs(1) sees them run on P0.
    def main() -> list[int]:
        go_on, got = gort.chan(), gort.chan()

        def spawner() -> None:
            def child() -> None:
                got.send(getg("child").p.id)

            def later() -> None:
                go_on.recv()
                for _ in range(5):
                    gort.go(child)

            gort.go(later)

        _go_on_p1(spawner)
        gort.gomaxprocs(1)
        go_on.send(None)
        return [got.recv() for _ in range(5)]

    assert gort.run(main, procs=2) == [0] * 5


def test_shrinking_loses_no_goroutine() -> None:
    # 400 goroutines parked over 4 Ps, then gomaxprocs(1), then woken: every one
    # finishes (the G a retiring M popped used to be dropped: a false deadlock).
    def main() -> list[int]:
        n = 400
        chans = [gort.chan() for _ in range(n)]
        done = gort.chan(n)

        def w(i: int) -> None:
            v = chans[i].recv()
            if i % 3 == 0:
                v = gort.syscall(lambda: v)
            gort.sleep(0.001)
            done.send(v)

        sums = []
        for _ in range(3):
            gort.gomaxprocs(4)
            for i in range(n):
                gort.go(w, i)
            gort.sleep(0.02)
            gort.gomaxprocs(1)
            for i in range(n):
                chans[i].send(i)
            sums.append(sum(done.recv() for _ in range(n)))
        return sums

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        assert gort.run(main, procs=1) == [79800] * 3
    finally:
        sys.setswitchinterval(old)


@pytest.mark.parametrize("bad", [2.5, "2", True])
def test_gomaxprocs_rejects_a_non_int_and_changes_nothing(bad: object) -> None:
    def main() -> tuple[str, int]:
        try:
            gort.gomaxprocs(bad)  # type: ignore[arg-type]
        except TypeError as e:
            return str(e), gort.gomaxprocs()
        return "accepted", gort.gomaxprocs()

    assert gort.run(main, procs=1) == (f"gort.gomaxprocs: n must be an int, not {bad!r}", 1)
