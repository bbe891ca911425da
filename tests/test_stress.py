"""Stress: many goroutines and channels with the GIL switching threads as often as it can.

``sys.setswitchinterval(1e-6)`` makes CPython hand the GIL between the runtime's threads
almost at every bytecode, so with GOMAXPROCS=2 the scheduler and channel code is
interleaved at nearly every point where it could be.
"""

from __future__ import annotations

import threading
import time

import pytest

import gort

TOTAL = 100_000
PRODUCERS = 10
RELAYS = 20
COLLECTORS = 20  # 50 goroutines besides main

THREADS: set[int] = set()  # the threads the pipeline's goroutines ran on


def _start_busy() -> None:
    """Hold the processor for a moment before the first park, so that the idle P takes
    (steals) some of the goroutines not started yet: the pipeline then really runs on two
    threads instead of one."""
    end = time.monotonic() + 0.002
    while time.monotonic() < end:
        pass
    THREADS.add(threading.get_ident())


def _producer(k: int, out: gort.chan, done: gort.chan) -> None:
    _start_busy()
    for v in range(k, TOTAL, PRODUCERS):
        out.send(v)
    done.send(k)


def _relay(src: gort.chan, left: gort.chan, right: gort.chan, done: gort.chan) -> None:
    _start_busy()
    for v in src:
        gort.select((left.send, v), (right.send, v))
    done.send(None)


def _collector(left: gort.chan, right: gort.chan, results: gort.chan) -> None:
    _start_busy()
    got: list[int] = []
    while left is not gort.nilchan or right is not gort.nilchan:
        i, (v, ok) = gort.select(left.recv2, right.recv2)
        if ok:
            got.append(v)
        elif i == 0:
            left = gort.nilchan  # closed: never choose it again
        else:
            right = gort.nilchan
    results.send(got)


def _pipeline() -> list[list[int]]:
    stage = gort.chan(64)
    left = gort.chan()  # unbuffered
    right = gort.chan(16)
    produced, relayed, results = gort.chan(), gort.chan(), gort.chan(COLLECTORS)
    for k in range(PRODUCERS):
        gort.go(_producer, k, stage, produced)
    for _ in range(RELAYS):
        gort.go(_relay, stage, left, right, relayed)
    for _ in range(COLLECTORS):
        gort.go(_collector, left, right, results)
    assert sorted(produced.recv() for _ in range(PRODUCERS)) == list(range(PRODUCERS))
    stage.close()
    for _ in range(RELAYS):
        relayed.recv()
    left.close()
    right.close()
    return [results.recv() for _ in range(COLLECTORS)]


@pytest.mark.timeout(600)
def test_hundred_thousand_values_through_fifty_goroutines(fast_switch: None) -> None:
    THREADS.clear()
    parts = gort.run(_pipeline, procs=2)
    assert len(THREADS) == 2, "the goroutines did not spread over the two Ps"
    values = [v for part in parts for v in part]
    assert len(values) == TOTAL, f"{len(values) - TOTAL:+d} values"
    seen = set(values)
    missing = TOTAL - len(seen)
    assert missing == 0 and len(values) == len(seen), f"{missing} lost, duplicates present"
    assert seen == set(range(TOTAL))


def test_token_ring_never_false_deadlock(procs: int, fast_switch: None) -> None:
    # At every moment all but one goroutine are parked: a deadlock detector that does not
    # see the runnable one (or one being handed the token) would fire wrongly.
    size, laps = 100, 100

    def node(inbox: gort.chan, outbox: gort.chan) -> None:
        _start_busy()
        for v in inbox:
            outbox.send(v + 1)

    def main() -> int:
        ring = [gort.chan() for _ in range(size + 1)]
        for k in range(size):
            gort.go(node, ring[k], ring[k + 1])
        token = 0
        for _ in range(laps):
            ring[0].send(token)
            token = ring[size].recv()
        return token

    assert gort.run(main, procs=procs) == size * laps


def test_spawn_churn(procs: int, fast_switch: None) -> None:
    n = 20_000

    def main() -> int:
        out = gort.chan(128)

        def worker(i: int) -> None:
            out.send(i)

        for i in range(n):
            gort.go(worker, i)
        total = 0
        for _ in range(n):
            total += out.recv()
        return total

    assert gort.run(main, procs=procs) == sum(range(n))


def test_select_storm(procs: int, fast_switch: None) -> None:
    # 40 goroutines each select over two inputs and a quit channel; every value is taken
    # exactly once, none is taken after quit.
    workers, n = 40, 20_000

    def worker(a: gort.chan, b: gort.chan, quit_: gort.chan, results: gort.chan) -> None:
        _start_busy()
        got: list[int] = []
        while True:
            i, v = gort.select(a.recv, b.recv, quit_.recv)
            if i == 2:
                break
            got.append(v)
        results.send(got)

    def main() -> list[int]:
        a, b, quit_, results = gort.chan(), gort.chan(8), gort.chan(), gort.chan()
        for _ in range(workers):
            gort.go(worker, a, b, quit_, results)
        for v in range(n):
            gort.select((a.send, v), (b.send, v))
        # b may still hold values: wait until it is drained before asking them to quit
        while len(b):
            gort.gosched()
        quit_.close()
        return [v for _ in range(workers) for v in results.recv()]

    got = gort.run(main, procs=procs)
    assert sorted(got) == list(range(n))


def test_close_races_with_blocked_senders_and_receivers(procs: int, fast_switch: None) -> None:
    # Repeatedly: goroutines block on a channel from both sides, then it is closed; every
    # sender must panic or have delivered, every receiver gets a value or (None, False).
    rounds, side = 200, 5

    def main() -> tuple[int, int, int]:
        delivered = panicked = closed_seen = 0
        for _ in range(rounds):
            ch = gort.chan()
            report = gort.chan(2 * side)

            def sender(ch: gort.chan = ch, report: gort.chan = report) -> None:
                try:
                    ch.send(1)
                    report.send("sent")
                except gort.Panic as exc:
                    report.send(str(exc))

            def receiver(ch: gort.chan = ch, report: gort.chan = report) -> None:
                _v, ok = ch.recv2()
                report.send("got" if ok else "closed")

            for _ in range(side):
                gort.go(sender)
                gort.go(receiver)
            gort.gosched()
            ch.close()
            outcomes = [report.recv() for _ in range(2 * side)]
            assert outcomes.count("sent") == outcomes.count("got")
            assert set(outcomes) <= {"sent", "got", "closed", "send on closed channel"}
            delivered += outcomes.count("sent")
            panicked += outcomes.count("send on closed channel")
            closed_seen += outcomes.count("closed")
        return delivered, panicked, closed_seen

    delivered, panicked, closed_seen = gort.run(main, procs=procs)
    assert delivered + panicked == rounds * side
    assert delivered + closed_seen == rounds * side
