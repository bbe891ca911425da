"""gort.synctest: bubbles with a fake clock (Go's testing/synctest)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

import gort
from gort import synctest
from gort.runtime.synctest import DEADLOCK, DEADLOCK_MAIN_EXITED, EPOCH


def _in_bubble(body: Callable[[], Any], procs: int = 1) -> Any:
    """Run body in a bubble inside a fresh run; return what it returned."""
    result: list[Any] = []

    def main() -> Any:
        synctest.run(lambda: result.append(body()))
        return result[0]

    return gort.run(main, procs=procs)


def test_an_hour_of_sleep_takes_no_time(procs: int) -> None:
    def body() -> tuple[float, float]:
        start = gort.now()
        gort.sleep(3600)
        return start, gort.now() - start

    t0 = time.monotonic()
    start, slept = _in_bubble(body, procs)
    assert start == EPOCH  # Go's bubbles start at 2000-01-01 00:00 UTC
    assert slept == 3600.0
    assert time.monotonic() - t0 < 10  # virtual, not real, time (bound for a loaded machine)


def test_one_hour_timeout(procs: int) -> None:
    """The test the issue asks for: a timeout of an hour, in milliseconds."""

    def body() -> tuple[int, float]:
        start = gort.now()
        reply: gort.Chan = gort.chan()

        def slow_server() -> None:
            gort.sleep(2 * 3600)
            reply.send("late")

        gort.go(slow_server)
        chosen, _ = gort.select(reply.recv, gort.after(3600).recv)
        waited = gort.now() - start
        reply.recv()  # let the server finish: run waits for every bubble goroutine
        return chosen, waited

    assert _in_bubble(body, procs) == (1, 3600.0)


def test_timers_tickers_after_func(procs: int) -> None:
    def body() -> list[Any]:
        start = gort.now()
        seen: list[Any] = []
        t = gort.Timer(5)
        stopped = gort.Timer(1)
        assert stopped.stop()
        reset = gort.Timer(100)
        reset.reset(2)
        tk = gort.Ticker(1.5)
        fired: gort.Chan = gort.chan(1)
        gort.after_func(4, lambda: fired.send(gort.now() - start))
        assert reset.c is not None and t.c is not None
        seen.append(("reset", reset.c.recv() - start))
        seen.append(("ticks", [tk.c.recv() - start for _ in range(2)]))
        seen.append(("after_func", fired.recv()))
        seen.append(("timer", t.c.recv() - start))
        tk.stop()
        return seen

    assert _in_bubble(body, procs) == [
        ("reset", 2.0),
        ("ticks", [1.5, 3.0]),
        ("after_func", 4.0),
        ("timer", 5.0),
    ]


def test_context_deadline_in_bubble(procs: int) -> None:
    def body() -> tuple[float, float, bool]:
        start = gort.now()
        ctx, cancel = gort.with_timeout(gort.background(), 90)
        try:
            deadline = ctx.deadline()
            assert deadline is not None
            ctx.done().recv()
            return deadline - start, gort.now() - start, ctx.err() is gort.DeadlineExceeded
        finally:
            cancel()

    assert _in_bubble(body, procs) == (90.0, 90.0, True)


def test_wait_returns_when_others_are_durably_blocked(procs: int) -> None:
    def body() -> list[str]:
        log: list[str] = []
        c: gort.Chan = gort.chan()

        def worker(name: str) -> None:
            log.append(f"{name} started")
            c.recv()
            log.append(f"{name} done")

        for name in "ab":
            gort.go(worker, name)
        synctest.wait()
        snapshot = sorted(log)
        c.close()
        synctest.wait()
        return [*snapshot, "|", *sorted(log)]

    assert _in_bubble(body, procs) == [
        "a started",
        "b started",
        "|",
        "a done",
        "a started",
        "b done",
        "b started",
    ]


def test_system_calls_are_not_durable_blocking() -> None:
    """While a bubble goroutine is in a system call the clock stands still."""

    def body() -> list[str]:
        log: list[str] = []
        done: gort.Chan = gort.chan(1)

        def io() -> None:
            gort.syscall(time.sleep, 0.05)
            log.append("syscall returned")
            done.send(None)

        gort.go(io)
        gort.sleep(1)  # may only end once the system call is over
        log.append("virtual second passed")
        done.recv()
        return log

    assert _in_bubble(body) == ["syscall returned", "virtual second passed"]


def test_run_waits_for_every_bubble_goroutine(procs: int) -> None:
    def main() -> list[str]:
        log: list[str] = []

        def body() -> None:
            def late() -> None:
                gort.sleep(10)
                log.append("late goroutine")

            gort.go(late)
            log.append("root returns")

        synctest.run(body)
        log.append("run returned")
        return log

    assert gort.run(main, procs=procs) == ["root returns", "late goroutine", "run returned"]


def test_deadlock_in_bubble_panics_with_dump(procs: int) -> None:
    def main() -> tuple[str, str]:
        def body() -> None:
            c: gort.Chan = gort.chan()
            gort.go(c.send, 1)
            gort.chan().recv()

        try:
            synctest.run(body)
        except gort.Panic as p:
            return str(p), "\n".join(getattr(p, "__notes__", []))
        return "", ""

    msg, dump = gort.run(main, procs=procs)
    assert msg == DEADLOCK
    assert "goroutine" in dump and "[chan receive]:" in dump and "[chan send]:" in dump
    assert (
        "test_synctest.test_deadlock_in_bubble_panics_with_dump.<locals>.main.<locals>.body" in dump
    )


def test_blocked_goroutines_after_root_exits(procs: int) -> None:
    def main() -> str:
        def body() -> None:
            gort.go(gort.chan().recv)

        with pytest.raises(gort.Panic) as info:
            synctest.run(body)
        return str(info.value)

    assert gort.run(main, procs=procs) == DEADLOCK_MAIN_EXITED


def test_misuse_panics() -> None:
    def main() -> list[str]:
        msgs = []
        try:
            synctest.wait()
        except gort.Panic as p:
            msgs.append(str(p))

        def nested() -> None:
            try:
                synctest.run(lambda: None)
            except gort.Panic as p:
                msgs.append(str(p))

        synctest.run(nested)
        with pytest.raises(TypeError, match="is not callable"):
            synctest.run(42)  # type: ignore[arg-type]
        return msgs

    assert gort.run(main) == [
        "goroutine is not in a bubble",
        "synctest.Run called from within a synctest bubble",
    ]
    with pytest.raises(RuntimeError, match="outside a goroutine"):
        synctest.run(lambda: None)


def test_clock_outside_the_bubble_is_real() -> None:
    def main() -> tuple[float, float]:
        inside: list[float] = []
        before = gort.now()
        synctest.run(lambda: (gort.sleep(1000), inside.append(gort.now())))
        return inside[0], gort.now() - before

    inside, real = gort.run(main)
    assert inside == EPOCH + 1000
    assert 0 <= real < 10


def test_bubble_channels_cannot_be_used_from_outside(procs: int) -> None:
    def main() -> list[str]:
        made: list[gort.Chan] = []
        outside: gort.Chan = gort.chan(1)

        def body() -> None:
            made.append(gort.chan(1))
            made.append(gort.after(5))
            outside.send("from inside")  # a channel from outside may be used inside

        synctest.run(body)
        c, timer_c = made
        msgs = []
        for op in (
            lambda: c.send(1),
            c.recv,
            c.recv2,
            c.close,
            lambda: list(c),
            lambda: gort.select(c.recv, gort.default),
            lambda: gort.select((c.send, 1), gort.default),
            timer_c.recv,
        ):
            try:
                op()
            except gort.Panic as p:
                msgs.append(str(p))
        msgs.append(outside.recv())
        return msgs

    assert gort.run(main, procs=procs) == [
        "send on synctest channel from outside bubble",
        "receive on synctest channel from outside bubble",
        "receive on synctest channel from outside bubble",
        "close of synctest channel from outside bubble",
        "receive on synctest channel from outside bubble",
        "receive on synctest channel from outside bubble",
        "send on synctest channel from outside bubble",
        "receive on synctest channel from outside bubble",
        "from inside",
    ]
