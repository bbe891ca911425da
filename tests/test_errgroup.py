"""errgroup.Group: first error, context cancellation, limits."""

from __future__ import annotations

from typing import Any

import pytest

import gort


def test_wait_returns_none_when_all_succeed(procs: int) -> None:
    def main() -> tuple[Any, list[int]]:
        g = gort.Group()
        out: list[int] = []
        for i in range(20):
            g.go(lambda i=i: (gort.sleep(0.001 * (i % 3)), out.append(i), None)[2])
        return g.wait(), sorted(out)

    assert gort.run(main, procs=procs) == (None, list(range(20)))


def test_first_error_raised_or_returned(procs: int) -> None:
    def main() -> None:
        g = gort.Group()
        first = ValueError("first")

        def fail_raise() -> None:
            raise first

        def fail_return() -> Exception:
            gort.sleep(0.01)
            return KeyError("second")

        g.go(fail_raise)
        g.go(fail_return)
        g.go(lambda: 42)  # a value that is not an exception is not an error
        assert g.wait() is first

        g2 = gort.Group()
        returned = RuntimeError("returned")
        g2.go(lambda: returned)
        assert g2.wait() is returned

    gort.run(main, procs=procs)


def test_with_context_cancels_on_first_error_and_on_wait(procs: int) -> None:
    def main() -> None:
        parent = gort.with_value(gort.background(), "k", "v")
        g, ctx = gort.Group.with_context(parent)
        boom = OSError("backend down")

        def worker() -> Any:
            i, _ = gort.select(ctx.done().recv, gort.after(10).recv)
            assert i == 0
            return ctx.err()  # Go's `return ctx.Err()`

        for _ in range(3):
            g.go(worker)

        def failing() -> None:
            gort.sleep(0.01)
            raise boom

        g.go(failing)
        assert g.wait() is boom
        assert ctx.err() is gort.Canceled and gort.cause(ctx) is boom
        assert ctx.value("k") == "v"

        g2, ctx2 = gort.Group.with_context(gort.background())
        g2.go(lambda: None)
        assert g2.wait() is None
        assert ctx2.err() is gort.Canceled  # wait cancels the context

    gort.run(main, procs=procs)


def test_set_limit_bounds_concurrency(procs: int) -> None:
    def main() -> int:
        g = gort.Group()
        g.set_limit(3)
        running = 0
        peak = 0

        def work() -> None:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            gort.sleep(0.002)
            running -= 1

        for _ in range(12):
            g.go(work)  # waits for room
        assert g.wait() is None
        return peak

    assert gort.run(main, procs=procs) == 3


def test_try_go_and_limit_changes(procs: int) -> None:
    def main() -> None:
        g = gort.Group()
        g.set_limit(1)
        release = gort.chan()
        assert g.try_go(release.recv) is True
        assert g.try_go(release.recv) is False
        with pytest.raises(
            gort.Panic,
            match="errgroup: modify limit while 1 goroutines in the group are still active",
        ):
            g.set_limit(2)
        release.send(None)
        assert g.wait() is None
        g.set_limit(-1)  # no limit
        for _ in range(5):
            assert g.try_go(lambda: None) is True
        assert g.wait() is None

    gort.run(main, procs=procs)
