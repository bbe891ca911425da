"""White-box run queue tests, after runtime/export_test.go's
RunSchedLocalQueueTest and RunSchedLocalQueueStealTest: what goes into a P's
queue comes out exactly once, in order, and stealing takes only what can move."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator

import pytest

from gort.runtime import proc
from gort.runtime.runtime2 import M0LOCK, RUNQ_SIZE, G, GStack, P, sched


def _g(goid: int) -> G:
    return G(goid, print, (), {}, contextvars.copy_context(), None)


@pytest.fixture
def fresh_sched() -> Iterator[None]:
    """A scheduler with two Ps and no program running (restored afterwards); the test's
    thread plays M0 (it holds M0LOCK, as run's thread does)."""
    assert not sched.running
    sched.__init__()  # type: ignore[misc]
    sched.allp = [P(0), P(1)]
    sched.gomaxprocs = 2
    with M0LOCK:
        yield
    sched.__init__()  # type: ignore[misc]


@pytest.mark.usefixtures("fresh_sched")
def test_local_queue_fifo_without_overflow() -> None:
    pp = sched.allp[0]
    for n in range(RUNQ_SIZE + 1):
        gs = [_g(i) for i in range(n)]
        for gp in gs:
            proc.runqput(pp, gp)
        out = [proc.runqget(pp) for _ in range(n)]
        assert out == gs
        assert proc.runqget(pp) is None
        assert not sched.runq


@pytest.mark.usefixtures("fresh_sched")
def test_overflow_moves_half_to_the_global_queue() -> None:
    pp = sched.allp[0]
    gs = [_g(i) for i in range(RUNQ_SIZE + 1)]
    for gp in gs:
        proc.runqput(pp, gp)
    # Go's runqputslow: half of the ring moves, oldest first, in one batch.
    assert list(sched.runq) == gs[: (RUNQ_SIZE + 1) // 2]
    assert list(pp.runq) == gs[(RUNQ_SIZE + 1) // 2 :]


@pytest.mark.usefixtures("fresh_sched")
def test_overflow_never_moves_a_started_goroutine() -> None:
    pp = sched.allp[0]
    started = []
    for i in range(RUNQ_SIZE):
        gp = _g(i)
        gp.glet = GStack()  # started: pinned to this P's thread
        gp.p = pp
        started.append(gp)
        proc.runqput(pp, gp)
    new = _g(RUNQ_SIZE)
    proc.runqput(pp, new)
    assert list(sched.runq) == []  # none of the first half could move
    assert sorted(g.goid for g in pp.runq) == list(range(RUNQ_SIZE + 1))


@pytest.mark.usefixtures("fresh_sched")
def test_runnext_comes_first_and_inherits_the_time_slice() -> None:
    pp = sched.allp[0]
    a, b, c = _g(1), _g(2), _g(3)
    proc.runqput(pp, a)
    b.p = c.p = pp
    proc.ready(b)  # runnext
    proc.ready(c)  # replaces b, which goes to the tail
    tick = pp.schedtick
    assert proc.runqget(pp) is c
    assert pp.schedtick == tick  # a hand-off through runnext keeps the slice
    assert proc.runqget(pp) is a
    assert proc.runqget(pp) is b
    assert pp.schedtick == tick + 2


@pytest.mark.usefixtures("fresh_sched")
@pytest.mark.parametrize("n", [0, 1, 2, 3, 10, 127, 128, 255])
def test_steal_takes_half_rounded_up_and_loses_nothing(n: int) -> None:
    victim, thief = sched.allp
    gs = [_g(i) for i in range(n)]
    for gp in gs:
        proc.runqput(victim, gp)
    first = proc.runqsteal(thief, victim)
    stolen = ([first] if first is not None else []) + list(thief.runq)
    assert len(stolen) == n - n // 2
    assert stolen + list(victim.runq) == gs  # the oldest are stolen, order kept


@pytest.mark.usefixtures("fresh_sched")
def test_steal_leaves_started_goroutines_home() -> None:
    victim, thief = sched.allp
    victim.m = None  # inject() wakes the victim's M if it has one
    gs = [_g(i) for i in range(8)]
    for i, gp in enumerate(gs):
        if i % 2 == 0:
            gp.glet = GStack()
            gp.p = victim
        proc.runqput(victim, gp)
    got = []
    while (gp := proc.runqsteal(thief, victim)) is not None:
        got.append(gp)
        got.extend(thief.runq)
        thief.runq.clear()
    assert all(gp.glet is None for gp in got)
    assert sorted(g.goid for g in got) == [1, 3, 5, 7]
    assert sorted(g.goid for g in victim.runq) == [0, 2, 4, 6]


@pytest.mark.usefixtures("fresh_sched")
def test_global_batch_respects_gomaxprocs_share() -> None:
    pp = sched.allp[0]
    gs = [_g(i) for i in range(10)]
    sched.runq.extend(gs)
    # globrunqgetbatch: n = min(max, len/gomaxprocs + 1) = min(128, 10/2 + 1) = 6
    first = proc.globrunqget(pp, RUNQ_SIZE // 2)
    assert first is gs[0]
    assert list(pp.runq) == gs[1:6]
    assert list(sched.runq) == gs[6:]
