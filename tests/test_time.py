"""Time: sleep, after, Timer (stop/reset with Go's results), Ticker, after_func, and how
timers and sleeping goroutines count for the deadlock detector.

Timing assertions follow one rule: "no earlier than the deadline" is checked strictly (a
timer may be late, never early), "no later than" gets a bound so generous that a loaded
2-core machine cannot miss it. Orders are compared where the runtime guarantees them.
"""

from __future__ import annotations

import itertools
import random
import re
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

import gort

LATE = 1.0  # generous "no later than" bound for a single timer, seconds


def _poll(ch: gort.chan) -> tuple[bool, object]:
    """Non-blocking receive: (True, value) if a value was ready, else (False, None)."""
    i, v = gort.select(ch.recv, gort.default)
    return i == 0, v


def _wait(d: float) -> None:
    """Block for d seconds on a separate timer (synchronises with the timer heap)."""
    gort.Timer(d).c.recv()


# --- sleep -----------------------------------------------------------------------------------


def test_sleep_wakes_no_earlier_than_deadline(procs: int) -> None:
    def main() -> list[tuple[float, float]]:
        out = []
        for d in (0.001, 0.01, 0.03):
            t0 = time.monotonic()
            gort.sleep(d)
            out.append((d, time.monotonic() - t0))
        return out

    for d, elapsed in gort.run(main, procs=procs):
        assert elapsed >= d
        assert elapsed < d + LATE


def test_sleep_ordering(procs: int) -> None:
    # Started in the order 30, 20, 10 ms, they must wake 10, 20, 30. With two Ps the
    # sleepers may sit in different Ps' heaps, whose Ms wake independently; the gaps are
    # widened there so the check is about order, not about a few ms of thread wake-up.
    unit = 0.01 if procs == 1 else 0.1

    def main() -> list[tuple[int, float]]:
        woke = gort.chan(3)

        def sleeper(n: int) -> None:
            deadline = gort.now() + n * unit
            gort.sleep(n * unit)
            woke.send((n, deadline))

        for n in (3, 2, 1):
            gort.go(sleeper, n)
        return [woke.recv() for _ in range(3)]

    woken = gort.run(main, procs=procs)
    # The sleepers start one after another: what must hold is deadline order, which is
    # 10, 20, 30 unless a start was delayed by more than a unit (a stalled machine).
    assert woken == sorted(woken, key=lambda w: w[1]), woken
    assert sorted(n for n, _ in woken) == [1, 2, 3]


def test_sleep_many_durations_wake_in_order_on_one_p(monkeypatch: pytest.MonkeyPatch) -> None:
    # One P, one timer heap: sleepers run in deadline order, even with durations only
    # 1 ms apart and however late the runtime is. The deadline is the one gort.sleep
    # computed (recorded where it arms the timer): one the sleeper computes itself
    # before calling sleep can be off by however long a loaded machine stalls between.
    durations = list(range(1, 41))
    random.Random(7).shuffle(durations)
    sleep_mod = sys.modules["gort.sleep"]
    deadlines: dict[int, float] = {}
    addtimer = sleep_mod.addtimer

    def recording(pp: Any, when: float, f: Any, gp: Any) -> int:
        deadlines[gp.goid] = when
        return addtimer(pp, when, f, gp)  # type: ignore[no-any-return]

    monkeypatch.setattr(sleep_mod, "addtimer", recording)

    def main() -> list[int]:
        woke = gort.chan(len(durations))

        def sleeper(ms: int) -> None:
            gort.sleep(ms / 1000)
            woke.send(gort.goid())

        for ms in durations:
            gort.go(sleeper, ms)
        return [woke.recv() for _ in durations]

    order = gort.run(main, procs=1)  # goroutines in the order they ran after waking
    assert sorted(order) == sorted(deadlines)
    assert order == sorted(order, key=deadlines.__getitem__)


@pytest.mark.parametrize("d", [0, -1.0])
def test_sleep_non_positive_returns_at_once(procs: int, d: float) -> None:
    def main() -> float:
        t0 = time.monotonic()
        gort.sleep(d)
        return time.monotonic() - t0

    assert gort.run(main, procs=procs) < LATE


def test_sleep_zero_yields_the_processor() -> None:
    # CONTRACT: sleep(d <= 0) returns at once but still yields, so on one P a goroutine
    # made runnable just before gets to run.
    def main() -> list[str]:
        log: list[str] = []
        gort.go(log.append, "other")
        gort.sleep(0)
        log.append("main")
        return log

    assert gort.run(main, procs=1) == ["other", "main"]


def test_sleep_outside_run_is_runtime_error() -> None:
    with pytest.raises(RuntimeError, match="sleep"):
        gort.sleep(0.01)


@pytest.mark.parametrize(
    ("call", "make"),
    [
        ("gort.Timer", lambda: gort.Timer(0.05)),
        ("gort.Ticker", lambda: gort.Ticker(0.05)),
        ("gort.after", lambda: gort.after(0.05)),
        ("gort.after_func", lambda: gort.after_func(0.05, print)),
    ],
)
def test_timers_need_a_goroutine(call: str, make: Callable[[], object]) -> None:
    # A timer lives on the heap of the calling goroutine's P: outside a run
    # there is none, and the error names the call.
    with pytest.raises(RuntimeError, match=re.escape(call + " called outside")):
        make()


def test_now_is_monotonic_clock() -> None:
    a = time.monotonic()
    b = gort.now()
    c = time.monotonic()
    assert a <= b <= c


def test_ten_thousand_sleepers_all_finish(procs: int) -> None:
    n = 10_000
    rng = random.Random(1)
    durations = [rng.uniform(0.001, 0.02) for _ in range(n)]

    def main() -> tuple[float, float]:
        early = gort.chan(n)  # each sleeper reports how much sooner than asked it woke
        t0 = time.monotonic()

        def sleeper(d: float) -> None:
            start = time.monotonic()
            gort.sleep(d)
            early.send(d - (time.monotonic() - start))

        for d in durations:
            gort.go(sleeper, d)
        worst = max(early.recv() for _ in range(n))
        return worst, time.monotonic() - t0

    worst_early, elapsed = gort.run(main, procs=procs)
    assert worst_early <= 0  # nobody woke before its deadline
    assert elapsed < 20.0


def test_hundred_thousand_sleepers_finish_soon_after_they_start(procs: int) -> None:
    # The figure: 100,000 goroutines each sleeping 10 ms finish well under a second
    # after they start. Each measures from its own start to its own finish (so creating
    # the 100,000 is not counted); the whole run gets a loose sanity bound.
    n = 100_000

    def main() -> tuple[float, float, float]:
        done = gort.chan()
        finished = itertools.count(1)
        took = [0.0] * n  # each goroutine's start-to-finish

        def sleeper(i: int) -> None:
            start = time.monotonic()
            gort.sleep(0.01)
            took[i] = time.monotonic() - start
            if next(finished) == n:
                done.close()

        t0 = time.monotonic()
        for i in range(n):
            gort.go(sleeper, i)
        done.recv()
        return max(took), min(took), time.monotonic() - t0

    longest, shortest, elapsed = gort.run(main, procs=procs)
    assert shortest >= 0.01
    # Well under the whole run: a sleeper's wake-up does not wait for the other
    # 99,999 to start or finish (then longest would be close to elapsed). Relative to
    # the run, so that a loaded machine, which stretches both, does not fail it.
    assert longest < max(1.0, elapsed / 3), (longest, elapsed)
    assert elapsed < 60.0


# --- after -------------------------------------------------------------------------------------


def test_after_delivers_once_the_fire_time(procs: int) -> None:
    def main() -> tuple[float, float, float, bool]:
        t0 = gort.now()
        c = gort.after(0.02)
        v = c.recv()
        got_at = gort.now()
        _wait(0.06)
        again, _ = _poll(c)
        return t0, v, got_at, again

    t0, v, got_at, again = gort.run(main, procs=procs)
    assert isinstance(v, float)
    assert t0 + 0.02 <= v <= got_at  # the value is gort.now() at firing
    assert got_at - t0 < 0.02 + LATE
    assert not again


def test_after_channel_has_capacity_one(procs: int) -> None:
    def main() -> tuple[int, int]:
        c = gort.after(0.01)
        _wait(0.05)
        return c.cap, len(c)

    assert gort.run(main, procs=procs) == (1, 1)


@pytest.mark.parametrize("d", [0, -0.5])
def test_after_non_positive_fires_at_once(procs: int, d: float) -> None:
    def main() -> float:
        t0 = time.monotonic()
        gort.after(d).recv()
        return time.monotonic() - t0

    assert gort.run(main, procs=procs) < LATE


def test_after_keeps_program_alive(procs: int) -> None:
    # main blocked on a channel only a timer will fill is not a deadlock
    def main() -> str:
        gort.after(0.05).recv()
        return "woke"

    assert gort.run(main, procs=procs) == "woke"


# --- Timer: stop ---------------------------------------------------------------------------------


def test_timer_fires_no_earlier_than_deadline(procs: int) -> None:
    def main() -> tuple[float, float, float]:
        t0 = gort.now()
        t = gort.Timer(0.03)
        v = t.c.recv()
        return t0, v, gort.now()

    t0, v, got_at = gort.run(main, procs=procs)
    assert t0 + 0.03 <= v <= got_at
    assert got_at < t0 + 0.03 + LATE


def test_timer_stop_before_firing(procs: int) -> None:
    def main() -> tuple[bool, bool, bool]:
        t = gort.Timer(0.03)
        stopped = t.stop()
        _wait(0.1)  # well past the original deadline
        received, _ = _poll(t.c)
        return stopped, received, t.stop()

    stopped, received, second_stop = gort.run(main, procs=procs)
    assert stopped is True
    assert received is False
    assert second_stop is False  # already stopped


def test_timer_stop_after_firing_and_receiving(procs: int) -> None:
    def main() -> bool:
        t = gort.Timer(0.01)
        t.c.recv()
        return t.stop()

    assert gort.run(main, procs=procs) is False


def test_timer_stop_after_firing_does_not_drain(procs: int) -> None:
    # Pre-Go-1.23 semantics: the fired value stays in the channel after stop.
    def main() -> tuple[bool, bool, bool]:
        t = gort.Timer(0.01)
        _wait(0.1)
        stopped = t.stop()
        received, _ = _poll(t.c)
        again, _ = _poll(t.c)
        return stopped, received, again

    assert gort.run(main, procs=procs) == (False, True, False)


def test_stopped_timer_is_not_keeping_program_alive(
    procs: int, capsys: pytest.CaptureFixture[str]
) -> None:
    # Receiving from the channel of a stopped timer blocks forever: a deadlock.
    def main() -> None:
        t = gort.Timer(0.05)
        assert t.stop() is True
        t.c.recv()

    t0 = time.monotonic()
    with pytest.raises(gort.Deadlock):
        gort.run(main, procs=procs)
    assert time.monotonic() - t0 < 10.0
    assert "fatal error: all goroutines are asleep - deadlock!" in capsys.readouterr().err


# --- Timer: reset --------------------------------------------------------------------------------


def test_timer_reset_pending_returns_true(procs: int) -> None:
    def main() -> tuple[bool, float, float, float]:
        t = gort.Timer(30.0)
        t_reset = gort.now()
        r = t.reset(0.02)
        v = t.c.recv()
        return r, t_reset, v, gort.now()

    r, t_reset, v, got_at = gort.run(main, procs=procs)
    assert r is True
    assert t_reset + 0.02 <= v <= got_at
    assert got_at < t_reset + 0.02 + LATE


def test_timer_reset_stopped_returns_false_and_fires_again(procs: int) -> None:
    def main() -> tuple[bool, bool, float, float]:
        t = gort.Timer(30.0)
        stopped = t.stop()
        t_reset = gort.now()
        r = t.reset(0.02)
        return stopped, r, t_reset, t.c.recv()

    stopped, r, t_reset, v = gort.run(main, procs=procs)
    assert stopped is True
    assert r is False
    assert v >= t_reset + 0.02


def test_timer_reset_fired_returns_false_and_fires_again(procs: int) -> None:
    def main() -> tuple[float, bool, float, float, bool]:
        t = gort.Timer(0.01)
        v1 = t.c.recv()
        t_reset = gort.now()
        r = t.reset(0.02)
        v2 = t.c.recv()
        return v1, r, t_reset, v2, t.stop()

    v1, r, t_reset, v2, stop_after = gort.run(main, procs=procs)
    assert r is False
    assert v1 < t_reset
    assert v2 >= t_reset + 0.02
    assert stop_after is False


def test_timer_reset_postpones(procs: int) -> None:
    def main() -> tuple[bool, bool, float, float, float]:
        t = gort.Timer(0.02)
        t_reset = gort.now()
        r = t.reset(0.4)
        _wait(0.1)  # past the original deadline, before the new one
        polled_at = gort.now()
        early, _ = _poll(t.c)
        return r, early, polled_at, t_reset, t.c.recv()

    r, early, polled_at, t_reset, v = gort.run(main, procs=procs)
    assert r is True
    assert polled_at < t_reset + 0.4  # (else the machine stalled for 0.3 s)
    assert early is False
    assert v >= t_reset + 0.4


def test_timer_reset_to_earlier(procs: int) -> None:
    def main() -> tuple[float, float]:
        t = gort.Timer(0.5)
        t.reset(0.01)
        t0 = gort.now()
        t.c.recv()
        return t0, gort.now()

    t0, got_at = gort.run(main, procs=procs)
    assert got_at - t0 < 0.4  # did not wait for the original 0.5 s


def test_timer_fires_once_per_arming(procs: int) -> None:
    def main() -> list[bool]:
        t = gort.Timer(0.01)
        t.c.recv()
        _wait(0.05)
        after_first, _ = _poll(t.c)
        t.reset(0.01)
        t.c.recv()
        _wait(0.05)
        after_second, _ = _poll(t.c)
        return [after_first, after_second]

    assert gort.run(main, procs=procs) == [False, False]


def test_many_timers_fire_in_deadline_order_on_one_p() -> None:
    # One heap: fire values (gort.now() at firing) follow deadline order.
    rng = random.Random(3)
    ms = [rng.randrange(1, 30) for _ in range(60)]

    def main() -> list[tuple[float, float]]:
        timers = []
        for d in ms:
            t0 = gort.now()
            timers.append((t0 + d / 1000, gort.Timer(d / 1000)))
        return [(deadline, t.c.recv()) for deadline, t in timers]

    fired = gort.run(main, procs=1)
    for deadline, v in fired:
        assert v >= deadline
    by_deadline = sorted(fired)
    # Deadlines a microsecond apart may legitimately swap; compare distinct ones.
    for (d1, v1), (d2, v2) in itertools.pairwise(by_deadline):
        if d2 - d1 > 1e-4:
            assert v1 <= v2, (d1, v1, d2, v2)


def test_timer_stopped_and_reset_from_other_goroutines(procs: int) -> None:
    def main() -> tuple[bool, bool, float, float]:
        t = gort.Timer(30.0)
        out = gort.chan(2)
        gort.go(lambda: out.send(t.stop()))
        stopped = out.recv()
        t_reset = gort.now()
        gort.go(lambda: out.send(t.reset(0.02)))
        reset = out.recv()
        return stopped, reset, t_reset, t.c.recv()

    stopped, reset, t_reset, v = gort.run(main, procs=procs)
    assert stopped is True
    assert reset is False
    assert v >= t_reset + 0.02


def test_concurrent_stops_exactly_one_wins(procs: int) -> None:
    n = 20

    def main() -> list[bool]:
        t = gort.Timer(30.0)
        gate = gort.chan()
        out = gort.chan(n)

        def stopper() -> None:
            gate.recv()
            out.send(t.stop())

        for _ in range(n):
            gort.go(stopper)
        gate.close()
        return [out.recv() for _ in range(n)]

    results = gort.run(main, procs=procs)
    assert results.count(True) == 1
    assert results.count(False) == n - 1


# --- Ticker ------------------------------------------------------------------------------------


def test_ticker_delivers_several_ticks(procs: int) -> None:
    period = 0.01

    def main() -> tuple[float, list[float], float]:
        t0 = gort.now()
        tk = gort.Ticker(period)
        ticks = [tk.c.recv() for _ in range(5)]
        tk.stop()
        return t0, ticks, gort.now()

    t0, ticks, end = gort.run(main, procs=procs)
    assert all(isinstance(v, float) for v in ticks)
    assert ticks == sorted(ticks) and len(set(ticks)) == 5
    for n, v in enumerate(ticks, 1):
        assert v >= t0 + n * period - 1e-6  # the n-th tick cannot come before n periods
    assert end - t0 < 5 * period + 2 * LATE


def test_ticker_stop_stops_ticks(procs: int) -> None:
    def main() -> tuple[int, bool]:
        tk = gort.Ticker(0.01)
        for _ in range(3):
            tk.c.recv()
        tk.stop()
        _wait(0.06)
        # At most one tick may be buffered (or in flight when stop was called) ...
        leftover = 0
        while _poll(tk.c)[0]:
            leftover += 1
        _wait(0.06)  # ... and after that, six more periods bring nothing.
        more, _ = _poll(tk.c)
        return leftover, more

    leftover, more = gort.run(main, procs=procs)
    assert leftover <= 1
    assert more is False


def test_ticker_slow_receiver_buffers_at_most_one_tick(procs: int) -> None:
    def main() -> int:
        tk = gort.Ticker(0.03)
        _wait(0.3)  # ten periods without receiving
        tk.stop()  # freeze: stop does not drain, so exactly what was kept is left
        kept = 0
        while _poll(tk.c)[0]:
            kept += 1
        return kept

    assert gort.run(main, procs=procs) == 1


def test_ticker_slow_receiver_sees_fewer_ticks_than_periods(procs: int) -> None:
    period = 0.01

    def main() -> tuple[int, float, list[int]]:
        tk = gort.Ticker(period)
        t0 = gort.now()
        received = 0
        per_round = []
        for _ in range(5):
            gort.sleep(0.05)  # five periods per round
            n = 0
            while _poll(tk.c)[0]:
                n += 1
            per_round.append(n)
            received += n
        tk.stop()
        return received, gort.now() - t0, per_round

    received, elapsed, per_round = gort.run(main, procs=procs)
    periods = elapsed / period
    assert periods >= 25
    # a tick is kept for the slow receiver (1), another may land while it drains (2)
    assert all(1 <= n <= 2 for n in per_round), per_round
    assert received <= periods / 2


def test_ticker_keeps_program_alive(procs: int) -> None:
    def main() -> int:
        done = gort.chan()

        def ticks() -> None:
            tk = gort.Ticker(0.01)
            for _ in range(3):
                tk.c.recv()
            tk.stop()
            done.send(3)

        gort.go(ticks)
        return done.recv()

    assert gort.run(main, procs=procs) == 3


@pytest.mark.parametrize("d", [0, -1.0])
def test_ticker_non_positive_period_is_refused(procs: int, d: float) -> None:
    # Go's NewTicker panics on a non-positive interval ("non-positive interval for
    # NewTicker"); a ValueError or a gort.Panic raised by the constructor both do here.
    def main() -> str:
        try:
            gort.Ticker(d)
        except (ValueError, gort.Panic) as e:
            return type(e).__name__
        return "created"

    assert gort.run(main, procs=procs) in ("ValueError", "Panic")


# --- after_func -----------------------------------------------------------------------------------


def test_after_func_runs_in_another_goroutine(procs: int) -> None:
    def main() -> tuple[bool, int, int, float, float]:
        ch = gort.chan(1)
        t0 = gort.now()
        t = gort.after_func(0.02, lambda: ch.send((gort.goid(), gort.now())))
        gid, ran_at = ch.recv()
        return isinstance(t, gort.Timer), gort.goid(), gid, t0, ran_at

    is_timer, main_id, fn_id, t0, ran_at = gort.run(main, procs=procs)
    assert is_timer
    assert main_id == 1
    assert fn_id != main_id
    assert ran_at >= t0 + 0.02


def test_after_func_stop_prevents_it(procs: int) -> None:
    def main() -> tuple[bool, list[int], bool]:
        ran: list[int] = []
        t = gort.after_func(0.03, lambda: ran.append(gort.goid()))
        stopped = t.stop()
        _wait(0.1)
        return stopped, ran, t.stop()

    assert gort.run(main, procs=procs) == (True, [], False)


def test_after_func_stop_after_run_returns_false(procs: int) -> None:
    def main() -> bool:
        ch = gort.chan()
        t = gort.after_func(0.01, ch.close)
        ch.recv()
        return t.stop()

    assert gort.run(main, procs=procs) is False


def test_after_func_reset_runs_it_again(procs: int) -> None:
    def main() -> tuple[bool, bool, list[int]]:
        ch = gort.chan(2)
        t = gort.after_func(30.0, lambda: ch.send(gort.goid()))
        pending = t.reset(0.01)
        first = ch.recv()
        fired = t.reset(0.01)
        second = ch.recv()
        return pending, fired, [first, second]

    pending, fired, ids = gort.run(main, procs=procs)
    assert pending is True
    assert fired is False
    assert 1 not in ids


def test_after_func_exception_is_a_panic(procs: int, capsys: pytest.CaptureFixture[str]) -> None:
    def boom() -> None:
        raise ValueError("from after_func")

    def main() -> None:
        gort.after_func(0.01, boom)
        gort.sleep(1.0)

    with pytest.raises(gort.Panic) as info:
        gort.run(main, procs=procs)
    assert isinstance(info.value.__cause__, ValueError)
    assert "panic: ValueError: from after_func" in capsys.readouterr().err


def test_after_func_keeps_program_alive(procs: int) -> None:
    def main() -> str:
        ch = gort.chan()
        gort.after_func(0.03, lambda: ch.send("ran"))
        return ch.recv()

    assert gort.run(main, procs=procs) == "ran"


# --- checkdead with timers ---------------------------------------------------------------------


def test_program_sleeping_then_finishing_is_not_deadlock(procs: int) -> None:
    def main() -> int:
        gort.sleep(0.05)
        return 7

    assert gort.run(main, procs=procs) == 7


def test_sleeping_goroutine_is_not_deadlock(procs: int) -> None:
    def main() -> str:
        ch = gort.chan()

        def later() -> None:
            gort.sleep(0.05)
            ch.send("late")

        gort.go(later)
        return ch.recv()

    assert gort.run(main, procs=procs) == "late"


def _nil_forever() -> None:
    gort.nilchan.recv()


def test_nilchan_sleeper_and_blocked_main_is_deadlock(
    procs: int, capsys: pytest.CaptureFixture[str]
) -> None:
    def main() -> None:
        gort.go(_nil_forever)
        gort.chan().recv()

    t0 = time.monotonic()
    with pytest.raises(gort.Deadlock) as info:
        gort.run(main, procs=procs)
    assert time.monotonic() - t0 < 10.0
    assert str(info.value) == "all goroutines are asleep - deadlock!"
    err = capsys.readouterr().err
    assert "fatal error: all goroutines are asleep - deadlock!" in err
    assert "goroutine 1 [chan receive]:" in err
    assert "[chan receive (nil chan)]:" in err


def test_deadlock_reported_once_timers_are_done(
    procs: int, capsys: pytest.CaptureFixture[str]
) -> None:
    # While main sleeps there is a timer; after it, nothing can wake anybody.
    woke: list[float] = []

    def main() -> None:
        gort.go(_nil_forever)
        gort.sleep(0.05)
        woke.append(gort.now())
        gort.chan().recv()

    with pytest.raises(gort.Deadlock):
        gort.run(main, procs=procs)
    assert len(woke) == 1
    assert "fatal error: all goroutines are asleep - deadlock!" in capsys.readouterr().err


def test_timers_are_per_run(procs: int) -> None:
    # A timer left pending when main returns does not leak into the next run.
    fired: list[int] = []

    def first() -> None:
        gort.after_func(0.05, lambda: fired.append(1))

    def second() -> None:
        gort.sleep(0.15)

    gort.run(first, procs=procs)
    gort.run(second, procs=procs)
    assert fired == []
