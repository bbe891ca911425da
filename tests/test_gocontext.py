"""Go's package context: gort.background, with_cancel, with_deadline, with_value...

(test_context.py is about contextvars across goroutines.)
"""

from __future__ import annotations

import gc
import weakref
from typing import Any

import pytest

import gort


def test_error_values_have_gos_texts() -> None:
    assert str(gort.Canceled) == "context canceled"
    assert str(gort.DeadlineExceeded) == "context deadline exceeded"
    assert issubclass(gort.DeadlineExceeded, TimeoutError)
    assert str(gort.Canceled()) == "context canceled"
    assert str(gort.DeadlineExceeded()) == "context deadline exceeded"
    assert repr(gort.Canceled) == "gort.Canceled"
    with pytest.raises(gort.DeadlineExceeded, match="context deadline exceeded"):
        raise gort.DeadlineExceeded
    with pytest.raises(TimeoutError):
        raise gort.DeadlineExceeded


def test_background_and_todo_are_never_cancelled() -> None:
    for ctx in (gort.background(), gort.todo()):
        assert ctx.done() is gort.nilchan
        assert ctx.err() is None
        assert ctx.deadline() is None
        assert ctx.value("k") is None
        assert gort.cause(ctx) is None
    assert repr(gort.background()) == "context.Background"
    assert repr(gort.todo()) == "context.TODO"


def test_cancel_closes_done_once_and_sets_err(procs: int) -> None:
    def main() -> list[Any]:
        ctx, cancel = gort.with_cancel(gort.background())
        assert ctx.err() is None
        done = ctx.done()
        assert ctx.done() is done
        i, _ = gort.select(done.recv, gort.default)
        assert i == 1  # not closed yet
        woke = gort.chan()

        def waiter() -> None:
            done.recv()
            woke.send(ctx.err())

        gort.go(waiter)
        gort.gosched()
        cancel()
        cancel()  # a second call does nothing (closing twice would panic)
        got = [woke.recv(), ctx.err(), gort.cause(ctx)]
        got.append(done.recv2())
        return got

    assert gort.run(main, procs=procs) == [
        gort.Canceled,
        gort.Canceled,
        gort.Canceled,
        (None, False),
    ]


def test_done_asked_after_cancel_is_closed(procs: int) -> None:
    def main() -> tuple[Any, bool]:
        ctx, cancel = gort.with_cancel(gort.background())
        cancel()
        _, ok = ctx.done().recv2()
        return ctx.err(), ok

    assert gort.run(main, procs=procs) == (gort.Canceled, False)


def test_cancellation_propagates_down_not_up(procs: int) -> None:
    def main() -> None:
        root, cancel_root = gort.with_cancel(gort.background())
        mid, cancel_mid = gort.with_cancel(gort.with_value(root, "k", 1))
        leaf, _ = gort.with_timeout(mid, 3600)
        sibling, _ = gort.with_cancel(root)
        cancel_mid()
        assert mid.err() is gort.Canceled and leaf.err() is gort.Canceled
        assert root.err() is None and sibling.err() is None
        cancel_root()
        assert sibling.err() is gort.Canceled
        late, _ = gort.with_cancel(root)  # made under a cancelled parent: cancelled at once
        assert late.err() is gort.Canceled
        assert late.done().recv2() == (None, False)

    gort.run(main, procs=procs)


def _tree(root: gort.Context, n: int) -> list[gort.Context]:
    """n descendants of root: a mix of fan-out and long chains, every kind of context."""
    nodes: list[gort.Context] = []
    parent = root
    for i in range(n):
        if i % 50 == 0:
            parent = root  # start a new chain of 50 under root
        kind = i % 4
        if kind == 0:
            parent, _ = gort.with_cancel(parent)
        elif kind == 1:
            parent = gort.with_value(parent, i, i)
        elif kind == 2:
            parent, _ = gort.with_timeout(parent, 3600)
        else:
            parent, _ = gort.with_cancel_cause(parent)
        nodes.append(parent)
    return nodes


def test_cancelling_a_parent_cancels_1000_descendants_and_keeps_none(procs: int) -> None:
    def main() -> None:
        root, cancel = gort.with_cancel(gort.background())
        nodes = _tree(root, 1000)
        refs = [weakref.ref(c) for c in nodes]
        dones = [c.done() for c in nodes]
        cancel()
        assert all(c.err() is gort.Canceled for c in nodes)
        assert all(d.recv2() == (None, False) for d in dones)
        del nodes, dones
        alive = sum(r() is not None for r in refs)
        assert alive == 0, f"{alive} descendants still referenced after the parent was cancelled"

    gc.disable()  # no cycles: plain reference counting must free them
    try:
        gort.run(main, procs=procs)
    finally:
        gc.enable()


def test_a_child_cancelled_first_is_dropped_by_its_live_parent(procs: int) -> None:
    def main() -> None:
        root, cancel = gort.with_cancel(gort.background())
        refs = []
        for _ in range(1000):
            child, cancel_child = gort.with_timeout(root, 3600)
            grandchild, _ = gort.with_cancel(child)
            refs.append(weakref.ref(grandchild))
            refs.append(weakref.ref(child))
            cancel_child()
        del child, grandchild, cancel_child, _
        alive = sum(r() is not None for r in refs)
        assert alive == 0, f"the live parent keeps {alive} cancelled descendants"
        assert root.err() is None
        cancel()

    gc.disable()
    try:
        gort.run(main, procs=procs)
    finally:
        gc.enable()


def test_cause(procs: int) -> None:
    def main() -> None:
        ctx, cancel = gort.with_cancel_cause(gort.background())
        child, _ = gort.with_cancel(ctx)
        assert gort.cause(ctx) is None
        why = ValueError("backend gone")
        cancel(why)
        cancel(KeyError("late"))  # the first cause stays
        assert ctx.err() is gort.Canceled
        assert gort.cause(ctx) is why and gort.cause(child) is why
        plain, cancel_plain = gort.with_cancel_cause(gort.background())
        cancel_plain(None)
        assert gort.cause(plain) is gort.Canceled
        values = gort.with_value(child, "k", "v")
        assert gort.cause(values) is why
        assert gort.cause(gort.without_cancel(ctx)) is None

    gort.run(main, procs=procs)


def test_deadline_fires_on_time(procs: int) -> None:
    def main() -> tuple[float, Any, Any, float | None, float]:
        start = gort.now()
        ctx, cancel = gort.with_timeout(gort.background(), 0.05)
        try:
            ctx.done().recv()
            return gort.now() - start, ctx.err(), gort.cause(ctx), ctx.deadline(), start
        finally:
            cancel()

    elapsed, err, why, deadline, start = gort.run(main, procs=procs)
    assert err is gort.DeadlineExceeded and why is gort.DeadlineExceeded
    assert deadline is not None and 0.05 <= deadline - start < 0.06
    assert 0.05 <= elapsed < 5.0  # never early; late only by the machine's load


def test_deadline_cause_and_past_deadline(procs: int) -> None:
    def main() -> None:
        why = RuntimeError("slow upstream")
        ctx, _ = gort.with_timeout_cause(gort.background(), 0.01, why)
        ctx.done().recv()
        assert ctx.err() is gort.DeadlineExceeded and gort.cause(ctx) is why
        past, cancel = gort.with_deadline(gort.background(), gort.now() - 1)
        assert past.err() is gort.DeadlineExceeded
        cancel()
        assert past.err() is gort.DeadlineExceeded  # cancel after the deadline changes nothing

    gort.run(main, procs=procs)


def test_a_child_keeps_its_parents_earlier_deadline(procs: int) -> None:
    def main() -> None:
        parent, cancel = gort.with_timeout(gort.background(), 0.05)
        d = parent.deadline()
        child, _ = gort.with_timeout(parent, 3600)
        assert child.deadline() == d
        sooner, _ = gort.with_timeout(parent, 0.01)
        assert sooner.deadline() is not None and d is not None and sooner.deadline() < d
        child.done().recv()
        assert child.err() is gort.DeadlineExceeded  # the parent's deadline reached it
        cancel()

    gort.run(main, procs=procs)


def test_a_cancelled_deadline_stops_its_timer() -> None:
    # A timer left pending would keep this program alive for an hour instead of
    # letting checkdead report the deadlock.
    def main() -> None:
        parent, cancel_parent = gort.with_cancel(gort.background())
        _, cancel = gort.with_timeout(gort.background(), 3600)
        gort.with_timeout(parent, 3600)
        cancel()
        cancel_parent()
        gort.chan().recv()

    with pytest.raises(gort.Deadlock):
        gort.run(main)


def test_values(procs: int) -> None:
    class Key:
        pass

    def main() -> None:
        k = Key()
        bg = gort.background()
        a = gort.with_value(bg, k, "a")
        b = gort.with_value(a, "other", 2)
        c, cancel = gort.with_cancel(b)
        d = gort.with_value(c, k, "shadowed")
        assert d.value(k) == "shadowed" and c.value(k) == "a" and c.value("other") == 2
        assert c.value("missing") is None
        assert gort.without_cancel(d).value(k) == "shadowed"
        assert "WithValue" in repr(d) and repr(d).startswith("context.Background")
        with pytest.raises(gort.Panic, match="nil key"):
            gort.with_value(bg, None, 1)
        with pytest.raises(gort.Panic, match="key is not comparable"):
            gort.with_value(bg, [], 1)
        cancel()
        assert d.err() is gort.Canceled and d.done() is c.done()

    gort.run(main, procs=procs)


def test_without_cancel(procs: int) -> None:
    def main() -> None:
        parent, cancel = gort.with_timeout(gort.with_value(gort.background(), "k", 1), 3600)
        free = gort.without_cancel(parent)
        child, cancel_child = gort.with_cancel(free)
        cancel()
        assert parent.err() is gort.Canceled
        assert free.err() is None and free.done() is gort.nilchan and free.deadline() is None
        assert child.err() is None and child.value("k") == 1
        cancel_child()

    gort.run(main, procs=procs)


def test_context_after_func(procs: int) -> None:
    def main() -> None:
        ran = gort.chan(10)
        ctx, cancel = gort.with_cancel(gort.background())
        stop_first = gort.context_after_func(ctx, lambda: ran.send("first"))
        stop_second = gort.context_after_func(ctx, lambda: ran.send("second"))
        assert stop_second() is True  # stopped before ctx was done: never runs
        assert stop_second() is False
        cancel()
        assert ran.recv() == "first"
        assert stop_first() is False  # already started
        # On a context that is already done, f runs at once (in its own goroutine).
        gort.context_after_func(ctx, lambda: ran.send("late"))
        assert ran.recv() == "late"
        gort.sleep(0.01)
        assert len(ran) == 0

    gort.run(main, procs=procs)


def test_a_custom_parent_is_watched(procs: int) -> None:
    class Custom(gort.Context):
        def __init__(self) -> None:
            self.ch = gort.chan()
            self.cancelled = False

        def deadline(self) -> float | None:
            return None

        def done(self) -> gort.Chan:
            return self.ch

        def err(self) -> Any:
            return gort.Canceled if self.cancelled else None

        def value(self, key: Any) -> Any:
            return "custom" if key == "who" else None

    def main() -> None:
        parent = Custom()
        child, cancel = gort.with_cancel(parent)
        assert child.value("who") == "custom"
        parent.cancelled = True
        parent.ch.close()
        child.done().recv()
        assert child.err() is gort.Canceled
        cancel()

    gort.run(main, procs=procs)


def test_a_custom_context_must_implement_the_interface() -> None:
    """Go's compiler rejects a type missing a Context method; here making one fails."""

    class Partial(gort.Context):
        def done(self) -> gort.Chan:
            return gort.nilchan

    with pytest.raises(TypeError, match="abstract method"):
        Partial()  # type: ignore[abstract]


def test_nil_parent_panics() -> None:
    with pytest.raises(gort.Panic, match="cannot create context from nil parent"):
        gort.with_cancel(None)  # type: ignore[arg-type]


def test_with_timeout_needs_a_goroutine() -> None:
    with pytest.raises(RuntimeError, match=r"gort\.with_deadline called outside a goroutine"):
        gort.with_timeout(gort.background(), 1)
