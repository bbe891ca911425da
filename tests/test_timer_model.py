"""Timers against a model (hypothesis).

A program creates a few Timers with durations of a few ms, then at chosen ticks of a model
clock stops, resets or receives from them. Real time is noisy, so the model does not pretend
to know when a timer fires; it knows bounds:

* a timer's deadline lies in [lo, hi], measured with gort.now() around the call that armed it;
* a timer never fires before lo (checked strictly: a fire value below lo, or stop()/reset()
  reporting "already fired" before lo, is a bug);
* on one P there is one heap, so when main wakes from a sleep whose deadline is W, every
  timer with hi < W has fired: a drain that finds nothing or stop() returning True is a bug;
  on two Ps only a timer late by more than SLACK is;
* stop()/reset() return True exactly when the timer was pending: when its value was already
  received they must return False; when they return False the timer fired, and its value is
  (or, if the channel was still full of an older value, may have been dropped) in the
  channel, never a second one (Go's pre-1.23 semantics, channel capacity 1);
* a value received is attributed by its fire time: armings of one timer do not overlap in
  time, so every value must belong to exactly one arming that fired;
* on one P, fire values follow deadline order wherever the deadline bounds do not overlap.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gort

U = 0.01  # one model tick, seconds; durations are (k + 1/2) ticks, ops happen on ticks
SLACK = 1.0  # a timer later than this is a bug whatever the machine's load
GUARD = 1.0  # how long to wait for a value the model says must be there

Op = tuple[int, str, int]  # (timer index, "stop" | "reset" | "recv" | "wait", k)
Step = tuple[int, list[Op]]  # (ticks to advance, ops at that tick)
Program = tuple[list[int], list[Step]]


@st.composite
def programs(draw: st.DrawFn) -> Program:
    n = draw(st.integers(1, 4))
    initial = draw(st.lists(st.integers(0, 5), min_size=n, max_size=n))
    op = st.tuples(
        st.integers(0, n - 1),
        st.sampled_from(["stop", "reset", "recv", "wait"]),
        st.integers(0, 5),
    )
    steps = draw(
        st.lists(st.tuples(st.integers(1, 3), st.lists(op, max_size=4)), min_size=1, max_size=6)
    )
    return initial, steps


@dataclass
class Arming:
    """One arming of a timer (creation or reset): its deadline lies in [lo, hi]."""

    name: str
    lo: float
    hi: float
    fired_by: float = math.inf  # once known to have fired: the latest it can have fired
    certain: bool = False  # its value went into an empty channel (cannot have been dropped)


@dataclass
class Tracked:
    timer: Any
    cur: Arming | None  # pending as far as the model knows
    unreceived: list[Arming] = field(default_factory=list)  # fired, value not seen yet
    full_until: float = -math.inf  # an older value was in the channel until this time
    armings: int = 0


@dataclass
class Fired:
    arming: Arming
    value: float


class Model:
    def __init__(self, procs: int, unit: float = U) -> None:
        self.procs = procs
        self.unit = unit
        self.t0 = 0.0
        self.wake_target = -math.inf
        self.fired: list[Fired] = []
        self.errors: list[str] = []
        self.log: list[str] = []

    # -- helpers --------------------------------------------------------------------------

    def dur(self, k: int) -> float:
        return (k + 0.5) * self.unit

    def ms(self, t: float) -> str:
        return f"{(t - self.t0) * 1000:.3f}ms"

    def error(self, msg: str) -> None:
        self.errors.append(msg)
        self.log.append("ERROR " + msg)

    def must_have_fired(self, a: Arming, t: float) -> bool:
        if a.hi + SLACK < t:
            return True
        return self.procs == 1 and a.hi < self.wake_target

    def arm(self, tr: Tracked, idx: int, a: float, b: float, d: float) -> Arming:
        tr.armings += 1
        arming = Arming(f"T{idx}#{tr.armings}", a + d, b + d)
        self.log.append(
            f"arm {arming.name} deadline in [{self.ms(arming.lo)}, {self.ms(arming.hi)}]"
        )
        return arming

    def sleep_until(self, target: float) -> None:
        d = target - gort.now()
        if d > 0:
            gort.sleep(d)
            self.wake_target = target  # main's own timer was due no earlier than target
        else:
            self.wake_target = -math.inf  # already late: no ordering guarantee this round
        self.log.append(f"woke for {self.ms(target)} at {self.ms(gort.now())}")

    # -- observations ---------------------------------------------------------------------

    def attribute(self, tr: Tracked, v: float, now: float) -> None:
        if not isinstance(v, float) or v > now:
            self.error(f"bad value {v!r} received at {self.ms(now)}")
            return
        for a in tr.unreceived:
            if a.lo <= v <= a.fired_by:
                tr.unreceived.remove(a)
                tr.full_until = now
                self.fired.append(Fired(a, v))
                self.log.append(f"recv {a.name} fired at {self.ms(v)}")
                return
        cur = tr.cur
        if cur is not None and v >= cur.lo:
            tr.cur = None
            self.fired.append(Fired(cur, v))
            self.log.append(f"recv {cur.name} fired at {self.ms(v)}")
            return
        if cur is not None:
            self.error(
                f"value fired at {self.ms(v)}, before {cur.name}'s deadline {self.ms(cur.lo)}"
            )
        else:
            self.error(f"value fired at {self.ms(v)} belongs to no arming that fired")

    def receive(self, tr: Tracked) -> None:
        """Take what the channel holds; block (bounded) when a value must be there."""
        expected = [a for a in tr.unreceived if a.certain]
        before = gort.now()
        if expected:
            i, v = gort.select(tr.timer.c.recv, gort.after(GUARD).recv)
            got = i == 0
        else:
            i, v = gort.select(tr.timer.c.recv, gort.default)
            got = i == 0
        now = gort.now()
        if got:
            self.attribute(tr, v, now)
            return
        for a in expected:
            self.error(f"{a.name} fired (by {self.ms(a.fired_by)}) but its value never came")
            a.certain = False
        cur = tr.cur
        if cur is not None and cur.lo > tr.full_until and self.must_have_fired(cur, before):
            self.error(
                f"{cur.name} due by {self.ms(cur.hi)} had not fired at {self.ms(before)} "
                f"(main woke for {self.ms(self.wake_target)})"
            )

    def wait(self, tr: Tracked) -> None:
        """Block on the channel of a pending timer whose value cannot be dropped."""
        cur = tr.cur
        if cur is None or tr.unreceived or cur.lo <= tr.full_until:
            self.receive(tr)
            return
        i, v = gort.select(tr.timer.c.recv, gort.after(cur.hi - gort.now() + GUARD).recv)
        now = gort.now()
        if i != 0:
            self.error(f"{cur.name} due by {self.ms(cur.hi)} never fired (waited until {now})")
            return
        self.attribute(tr, v, now)
        # On one P, the heap ran every timer due before this one ahead of it.
        self.wake_target = cur.lo if self.procs == 1 and tr.cur is None else -math.inf

    def operate(self, tr: Tracked, idx: int, kind: str, k: int) -> None:
        self.receive(tr)
        cur = tr.cur
        d = self.dur(k)
        oa = gort.now()
        r = tr.timer.stop() if kind == "stop" else tr.timer.reset(d)
        ob = gort.now()
        self.log.append(f"{kind} T{idx} at [{self.ms(oa)}, {self.ms(ob)}] -> {r!r}")
        if r is not True and r is not False:
            self.error(f"{kind} returned {r!r}, not a bool")
        elif cur is None:
            if r:
                self.error(f"{kind} returned True for T{idx}, which was not pending")
        elif r:
            if self.must_have_fired(cur, oa):
                self.error(f"{kind}: {cur.name} due by {self.ms(cur.hi)} still pending")
        else:
            if cur.lo > ob:
                self.error(f"{kind}: {cur.name} fired before {self.ms(cur.lo)}")
            cur.fired_by = ob
            cur.certain = cur.lo > tr.full_until
            tr.unreceived.append(cur)
        tr.cur = self.arm(tr, idx, oa, ob, d) if kind == "reset" else None

    # -- the program ------------------------------------------------------------------------

    def execute(self, program: Program) -> None:
        initial, steps = program
        self.t0 = gort.now()
        tracked: list[Tracked] = []
        for idx, k in enumerate(initial):
            a = gort.now()
            t = gort.Timer(self.dur(k))
            b = gort.now()
            tr = Tracked(t, None)
            tr.cur = self.arm(tr, idx, a, b, self.dur(k))
            tracked.append(tr)
        tick = 0
        for advance, ops in steps:
            tick += advance
            self.sleep_until(self.t0 + tick * self.unit)
            for idx, kind, k in ops:
                tr = tracked[idx]
                if kind == "recv":
                    self.receive(tr)
                elif kind == "wait":
                    self.wait(tr)
                else:
                    self.operate(tr, idx, kind, k)
        self.finish(tracked)

    def finish(self, tracked: list[Tracked]) -> None:
        pending = [tr.cur.hi for tr in tracked if tr.cur is not None]
        self.sleep_until(max(pending, default=gort.now()) + self.unit)
        for tr in tracked:
            self.receive(tr)
            if tr.cur is not None and tr.cur.lo > tr.full_until:
                self.wait(tr)  # its value cannot have been dropped: it must come
        # Every arming is over: nothing more may arrive.
        gort.Timer(3 * self.unit).c.recv()
        for idx, tr in enumerate(tracked):
            i, v = gort.select(tr.timer.c.recv, gort.default)
            if i == 0:
                self.log.append(f"late value on T{idx}")
                if tr.cur is not None and v >= tr.cur.lo:
                    continue  # an arming whose value could have been dropped, and was not
                self.attribute(tr, v, gort.now())

    def check_results(self) -> None:
        for f in self.fired:
            if f.value < f.arming.lo:
                self.error(f"{f.arming.name} fired at {self.ms(f.value)}, before its deadline")
            if f.value > f.arming.hi + SLACK:
                self.error(f"{f.arming.name} fired {f.value - f.arming.hi:.3f}s late")
        if self.procs != 1:
            return
        for f, g in itertools.permutations(self.fired, 2):
            if f.arming.hi < g.arming.lo and f.value > g.value:
                self.error(
                    f"{f.arming.name} (due by {self.ms(f.arming.hi)}) fired at "
                    f"{self.ms(f.value)}, after {g.arming.name} (due from "
                    f"{self.ms(g.arming.lo)}) at {self.ms(g.value)}"
                )


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(program=programs())
def test_timers_match_model(procs: int, program: Program) -> None:
    model = Model(procs)
    gort.run(model.execute, program, procs=procs)
    model.check_results()
    assert not model.errors, "\n".join([*model.errors, "--- log ---", *model.log])


def test_model_sanity_fixed_program(procs: int) -> None:
    # A hand-written program on a coarse clock (half-tick margins of 50 ms), so the model
    # is exercised on outcomes it can predict for sure, even on a loaded machine.
    program: Program = (
        [0, 5, 2],  # T0 due at 0.5 ticks, T1 at 5.5, T2 at 2.5
        [
            (1, [(0, "stop", 0), (1, "stop", 0)]),  # T0 fired -> False; T1 pending -> True
            (1, [(2, "reset", 4), (1, "reset", 0)]),  # T2 pending -> True; T1 stopped -> False
            (3, [(0, "recv", 0), (1, "recv", 0), (2, "recv", 0)]),
            (5, [(2, "stop", 0)]),
        ],
    )
    model = Model(procs, unit=0.1)
    gort.run(model.execute, program, procs=procs)
    model.check_results()
    assert not model.errors, "\n".join([*model.errors, "--- log ---", *model.log])
    names = sorted(f.arming.name for f in model.fired)
    assert names == ["T0#1", "T1#2", "T2#2"], model.log
