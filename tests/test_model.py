"""Model-based tests: buffered channels and select against a reference queue model.

(The last test adds goroutines blocked in send, recv and select, and close, against a
model with FIFO wait queues.)

Random programs of non-blocking channel operations run in one goroutine; after every step
the channels are compared with a model (a deque per channel, its capacity and a closed
flag). Operations that could block are only issued when the model says they will not
(otherwise through ``select`` with ``gort.default``), so a program never waits forever.
``select`` may choose any ready case: the model checks that the chosen case was ready,
then follows the choice.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gort
from gort.runtime.proc import getg
from gort.runtime.runtime2 import G_WAITING, sched

MODEL_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# An operation is a tuple: (kind, channel index, value) or ("select", cases).
Op = tuple[Any, ...]
Case = tuple[str, int, Any]  # ("recv" | "recv2" | "send" | "nilrecv" | "nilsend", index, value)
Check = Callable[[int, str, object, object], bool]


@dataclass
class ChanModel:
    cap: int
    buf: deque[object] = field(default_factory=deque)
    closed: bool = False

    def recv_ready(self) -> bool:
        return bool(self.buf) or self.closed

    def send_ready(self) -> bool:
        # a send on a closed channel is "ready": it panics at once
        return self.closed or len(self.buf) < self.cap

    def recv(self) -> tuple[object, bool]:
        if self.buf:
            return self.buf.popleft(), True
        assert self.closed
        return None, False


values = st.one_of(st.none(), st.integers(-5, 1000), st.text(max_size=3))


@st.composite
def programs(draw: st.DrawFn) -> tuple[list[int], list[Op]]:
    caps = draw(st.lists(st.integers(0, 3), min_size=1, max_size=4))
    idx = st.integers(0, len(caps) - 1)
    case = st.one_of(
        st.tuples(st.sampled_from(["recv", "recv2"]), idx, st.none()),
        st.tuples(st.just("send"), idx, values),
        st.tuples(st.sampled_from(["nilrecv", "nilsend"]), st.just(0), values),
    )
    op = st.one_of(
        st.tuples(st.sampled_from(["send", "direct_send"]), idx, values),
        st.tuples(st.sampled_from(["recv", "recv2", "direct_recv", "direct_recv2"]), idx),
        st.tuples(st.just("close"), idx),
        st.tuples(st.just("len"), idx),
        st.tuples(st.just("drain"), idx),
        st.tuples(st.just("select"), st.lists(case, min_size=1, max_size=5), st.integers(0, 5)),
    )
    ops = draw(st.lists(op, max_size=60))
    return caps, ops


def _panic_text(fn: Any, *args: Any) -> tuple[str, Any]:
    """Run ``fn(*args)``; ("ok", result) or ("panic", message)."""
    try:
        return "ok", fn(*args)
    except gort.Panic as exc:
        return "panic", str(exc)


def _execute(caps: list[int], ops: list[Op], procs: int) -> list[str]:
    """Run the program in a goroutine; return the list of disagreements with the model."""
    errors: list[str] = []

    def main() -> None:
        chans = [gort.chan(c) for c in caps]
        model = [ChanModel(c) for c in caps]

        def check(step: int, what: str, got: object, want: object) -> bool:
            if got != want:
                errors.append(f"step {step} {what}: got {got!r}, model says {want!r}")
                return False
            return True

        for step, op in enumerate(ops):
            kind = op[0]
            if kind == "select":
                if not _run_select(step, op[1], op[2], chans, model, check):
                    return
            else:
                ch, m = chans[op[1]], model[op[1]]
                if not _run_simple(step, kind, op, ch, m, check):
                    return
            for k, (c, mm) in enumerate(zip(chans, model, strict=True)):
                if not check(step, f"len(chan {k}) after {op!r}", len(c), len(mm.buf)):
                    return
                if not check(step, f"cap(chan {k})", c.cap, mm.cap):
                    return

    gort.run(main, procs=procs)
    return errors


def _run_simple(step: int, kind: str, op: Op, ch: gort.chan, m: ChanModel, check: Check) -> bool:
    if kind == "direct_send" and not m.send_ready():
        kind = "send"  # would block: use the select form
    if kind in ("direct_recv", "direct_recv2") and not m.recv_ready():
        kind = kind.removeprefix("direct_")
    if kind == "drain" and not m.closed:
        kind = "len"

    if kind == "send":
        got = _panic_text(gort.select, (ch.send, op[2]), gort.default)
        if m.closed:
            return bool(check(step, repr(op), got, ("panic", "send on closed channel")))
        if len(m.buf) < m.cap:
            m.buf.append(op[2])
            return bool(check(step, repr(op), got, ("ok", (0, None))))
        return bool(check(step, repr(op), got, ("ok", (1, None))))
    if kind == "direct_send":
        got = _panic_text(ch.send, op[2])
        if m.closed:
            return bool(check(step, repr(op), got, ("panic", "send on closed channel")))
        m.buf.append(op[2])
        return bool(check(step, repr(op), got, ("ok", None)))
    if kind in ("recv", "recv2"):
        method = ch.recv if kind == "recv" else ch.recv2
        got = _panic_text(gort.select, method, gort.default)
        if not m.recv_ready():
            return bool(check(step, repr(op), got, ("ok", (1, None))))
        v, ok = m.recv()
        return bool(check(step, repr(op), got, ("ok", (0, v if kind == "recv" else (v, ok)))))
    if kind in ("direct_recv", "direct_recv2"):
        got = _panic_text(ch.recv if kind == "direct_recv" else ch.recv2)
        v, ok = m.recv()
        return bool(check(step, repr(op), got, ("ok", v if kind == "direct_recv" else (v, ok))))
    if kind == "close":
        got = _panic_text(ch.close)
        if m.closed:
            return bool(check(step, repr(op), got, ("panic", "close of closed channel")))
        m.closed = True
        return bool(check(step, repr(op), got, ("ok", None)))
    if kind == "len":
        return bool(check(step, repr(op), len(ch), len(m.buf)))
    if kind == "drain":
        got = list(ch)
        want = list(m.buf)
        m.buf.clear()
        return bool(check(step, repr(op), got, want))
    raise AssertionError(kind)


def _run_select(
    step: int,
    cases: list[Case],
    default_at: int,
    chans: list[gort.chan],
    model: list[ChanModel],
    check: Check,
) -> bool:
    default_at = min(default_at, len(cases))
    args: list[Any] = []
    ready: set[int] = set()
    at_slot: dict[int, Case] = {}  # select argument position -> case
    for pos, (kind, i, v) in enumerate(cases):
        slot = pos if pos < default_at else pos + 1
        at_slot[slot] = (kind, i, v)
        if kind == "recv":
            args.append(chans[i].recv)
            if model[i].recv_ready():
                ready.add(slot)
        elif kind == "recv2":
            args.append(chans[i].recv2)
            if model[i].recv_ready():
                ready.add(slot)
        elif kind == "send":
            args.append((chans[i].send, v))
            if model[i].send_ready():
                ready.add(slot)
        elif kind == "nilrecv":
            args.append(gort.nilchan.recv)
        else:
            args.append((gort.nilchan.send, v))
    args.insert(default_at, gort.default)
    desc = f"select{tuple(cases)!r} default at {default_at}"

    status, got = _panic_text(gort.select, *args)
    if status == "panic":
        closed_sends = [s for s in ready if at_slot[s][0] == "send" and model[at_slot[s][1]].closed]
        # a panic must come from a ready send on a closed channel, and changes nothing else
        return bool(check(step, desc, (got, bool(closed_sends)), ("send on closed channel", True)))
    index, value = got
    if not ready:
        return bool(check(step, desc, got, (default_at, None)))
    if index not in ready:
        return bool(check(step, f"{desc} chose a case that is not ready", index, sorted(ready)))
    kind, i, v = at_slot[index]
    m = model[i]
    if kind == "send":
        if m.closed:
            return bool(check(step, desc, got, "panic: send on closed channel"))
        m.buf.append(v)
        return bool(check(step, desc, value, None))
    rv, ok = m.recv()
    return bool(check(step, desc, value, rv if kind == "recv" else (rv, ok)))


@MODEL_SETTINGS
@given(program=programs())
def test_channels_match_queue_model(procs: int, program: tuple[list[int], list[Op]]) -> None:
    caps, ops = program
    assert _execute(caps, ops, procs) == []


# --- the random choice ------------------------------------------------------------------------


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    readiness=st.lists(
        st.sampled_from(["full", "empty", "closed", "nil", "room"]), min_size=1, max_size=5
    ).filter(lambda r: any(x in ("full", "closed", "room") for x in r))
)
def test_select_choice_covers_exactly_the_ready_cases(procs: int, readiness: list[str]) -> None:
    """Each case is a receive, except "room" (a send with room): the chosen cases over many
    selects are exactly the ready ones, each with a plausible share."""
    trials = 300

    def main() -> Counter[int]:
        counts: Counter[int] = Counter()
        chans: list[gort.chan] = []
        for kind in readiness:
            ch = gort.nilchan if kind == "nil" else gort.chan(1)
            if kind == "closed":
                ch.close()
            chans.append(ch)
        for _ in range(trials):
            args: list[Any] = []
            for kind, ch in zip(readiness, chans, strict=True):
                if kind == "full" and len(ch) == 0:
                    ch.send(kind)
                args.append((ch.send, "x") if kind == "room" else ch.recv)
            i, _v = gort.select(*args)
            counts[i] += 1
            if readiness[i] == "room":
                chans[i].recv()
        return counts

    counts = gort.run(main, procs=procs)
    ready = {i for i, kind in enumerate(readiness) if kind in ("full", "closed", "room")}
    assert set(counts) == ready
    # a uniformly random choice among k <= 5 cases over 300 trials: each gets far more than 10
    assert min(counts.values()) > 10, counts


@pytest.mark.parametrize("cap", [1, 2, 3])
def test_model_sanity_fill_drain(procs: int, cap: int) -> None:
    # a fixed program through the same machinery, so a broken model is noticed
    ops: list[Op] = [("send", 0, i) for i in range(cap + 1)]
    ops += [("close", 0), ("recv", 0), ("drain", 0), ("recv2", 0), ("close", 0)]
    assert _execute([cap], ops, procs) == []


# --- blocked senders, receivers, select waiters and close ----------------------------------------


@dataclass
class WaitModel:
    """A channel with its waiters: FIFO queues of (goroutine id, value) senders and of
    receivers, where a receiver is (goroutine id, this channel's case index or None)."""

    cap: int
    buf: deque[object] = field(default_factory=deque)
    closed: bool = False
    senders: list[tuple[int, object]] = field(default_factory=list)
    receivers: list[tuple[int, int | None]] = field(default_factory=list)


@st.composite
def blocking_programs(draw: st.DrawFn) -> tuple[list[int], list[Op]]:
    caps = draw(st.lists(st.integers(0, 2), min_size=2, max_size=3))
    idx = st.integers(0, len(caps) - 1)
    op = st.one_of(
        st.tuples(st.sampled_from(["go_send", "send"]), idx, st.integers(0, 99)),
        st.tuples(st.sampled_from(["go_recv", "recv", "close"]), idx),
        st.tuples(st.just("go_select"), idx, idx),
    )
    return caps, draw(st.lists(op, max_size=40))


def _run_blocking(
    caps: list[int], ops: list[Op], procs: int, ran: Counter[int]
) -> tuple[dict[int, object], dict[int, object]]:
    """Run the program; return (what each goroutine got, what the model says it gets).
    ``ran`` counts the goroutines (main included) started on each P."""
    model = [WaitModel(c) for c in caps]
    want: dict[int, object] = {}

    def wake_receiver(m: WaitModel, value: object, ok: bool) -> None:
        gid, case = m.receivers.pop(0)
        for other in model:  # a select waiter leaves every queue
            other.receivers = [r for r in other.receivers if r[0] != gid]
        want[gid] = (value, ok) if case is None else (case, (value, ok))

    def model_send(m: WaitModel, gid: int, v: object) -> bool:
        """Apply a send; False when it blocks."""
        if m.receivers:
            wake_receiver(m, v, True)
        elif len(m.buf) < m.cap:
            m.buf.append(v)
        else:
            m.senders.append((gid, v))
            return False
        want[gid] = "sent"
        return True

    def model_recv(m: WaitModel) -> tuple[object, bool] | None:
        if m.buf:
            v = m.buf.popleft()
            if m.senders:
                sid, sv = m.senders.pop(0)
                m.buf.append(sv)
                want[sid] = "sent"
            return v, True
        if m.senders:
            sid, sv = m.senders.pop(0)
            want[sid] = "sent"
            return sv, True
        if m.closed:
            return None, False
        return None

    def main() -> dict[int, object]:
        ran[getg("model").p.id] += 1  # main's own operations run on its P (P0)
        chans = [gort.chan(c) for c in caps]
        report = gort.chan(len(ops) + 1)
        started: dict[int, int] = {}  # step -> goid of the goroutine it started
        nstarted = 0

        def go(g: int, body: Callable[[], object]) -> None:
            nonlocal nstarted

            def run() -> None:
                gp = getg("model")
                started[g] = gp.goid
                ran[gp.p.id] += 1
                body()

            nstarted += 1
            gort.go(run)

        def settled(goid: int) -> bool:
            gp = sched.allgs.get(goid)
            return gp is None or gp.status == G_WAITING  # done, or blocked in a channel op

        def settle() -> None:
            """Wait until every goroutine started so far has finished or blocks (with two
            Ps they run on P1 too, concurrently with main: yielding is not enough)."""
            deadline = time.monotonic() + 10
            while len(started) < nstarted or not all(map(settled, started.values())):
                assert time.monotonic() < deadline, "a goroutine neither finished nor blocked"
                if procs > 1:
                    time.sleep(0.0002)  # blocks this M (not the goroutine): P1 steals
                gort.gosched()

        for g, op in enumerate(ops, 1):  # g: the id of a goroutine this step may start
            kind, i = op[0], op[1]
            m, ch = model[i], chans[i]
            if kind == "go_send" and not m.closed:
                go(g, lambda g=g, ch=ch, v=op[2]: (ch.send(v), report.send((g, "sent"))))
                model_send(m, g, op[2])
            elif kind == "send" and not m.closed and (m.receivers or len(m.buf) < m.cap):
                ch.send(op[2])
                model_send(m, 0, op[2])
            elif kind == "go_recv":
                go(g, lambda g=g, ch=ch: report.send((g, ch.recv2())))
                got = model_recv(m)
                if got is None:
                    m.receivers.append((g, None))
                else:
                    want[g] = got
            elif kind == "recv" and (m.buf or m.senders or m.closed):
                want[-g] = model_recv(m)  # main's own receive, which does not block
                report.send((-g, ch.recv2()))
            elif kind == "go_select":
                j = op[2]
                if i != j and not any(
                    model[k].buf or model[k].senders or model[k].closed for k in (i, j)
                ):
                    a, b = chans[i], chans[j]
                    go(g, lambda g=g, a=a, b=b: report.send((g, gort.select(a.recv2, b.recv2))))
                    model[i].receivers.append((g, 0))
                    model[j].receivers.append((g, 1))
            elif kind == "close" and not m.closed and not m.senders:
                ch.close()
                m.closed = True
                while m.receivers:
                    wake_receiver(m, None, False)
            settle()
            for k, (c, mm) in enumerate(zip(chans, model, strict=True)):
                assert len(c) == len(mm.buf), f"len(chan {k}) after {op!r}"
        got: dict[int, object] = {}
        while len(report):
            k, v = report.recv()
            got[k] = v
        return got  # the goroutines still blocked are unwound by the run's end

    got = gort.run(main, procs=procs)
    return got, want


def test_blocked_waiters_match_fifo_model(procs: int) -> None:
    """Goroutines blocked in send, recv and select are served first come, first served,
    close wakes every receiver with (None, False), and no value is lost or duplicated.
    The program settles after each step (every goroutine finished or blocked), so the
    model knows who waits; with two Ps the goroutines run on both (checked at the end)."""
    ran: Counter[int] = Counter()

    @MODEL_SETTINGS
    @given(program=blocking_programs())
    def check(program: tuple[list[int], list[Op]]) -> None:
        caps, ops = program
        got, want = _run_blocking(caps, ops, procs, ran)
        want.pop(0, None)  # main's own sends
        assert got == want

    check()
    # main runs on P0; with two Ps the goroutines it starts ran on P1 too (some or all).
    assert sorted(ran) == list(range(procs)), f"goroutines started per P: {dict(ran)}"
