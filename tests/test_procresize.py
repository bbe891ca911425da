"""gomaxprocs(n) at run time, like Go's procresize: the work keeps flowing
through every resize, and the Ms of removed Ps end once their goroutines have."""

from __future__ import annotations

import threading

import gort


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
