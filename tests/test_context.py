"""contextvars across goroutines: each goroutine runs in a copy of its
creator's context, whatever thread or scheduler path ends up running it."""

from __future__ import annotations

import contextvars
import threading

import gort

request: contextvars.ContextVar[str] = contextvars.ContextVar("request", default="unset")


def test_go_copies_the_creators_context(procs: int) -> None:
    def child(out: gort.chan) -> None:
        seen = request.get()
        request.set("child")  # a copy: the parent does not see this
        out.send(seen)

    def main() -> tuple[str, str]:
        request.set("main")
        out = gort.chan()
        gort.go(child, out)
        return out.recv(), request.get()

    assert gort.run(main, procs=procs) == ("main", "main")


def test_recycled_greenlets_do_not_leak_context(procs: int) -> None:
    # Goroutines run one after another on recycled greenlets; none sees another's set().
    def child(i: int, out: gort.chan) -> None:
        seen = request.get()
        request.set(f"child {i}")
        out.send(seen)

    def main() -> set[str]:
        out = gort.chan()
        for i in range(200):
            gort.go(child, i, out)
        return {out.recv() for _ in range(200)}

    assert gort.run(main, procs=procs) == {"unset"}


def test_after_func_runs_in_its_callers_context(procs: int) -> None:
    # Not in the context of whichever goroutine runs when the timer fires.
    def main() -> str:
        out = gort.chan(1)
        request.set("main")
        gort.after_func(0.02, lambda: out.send(request.get()))

        def other() -> None:
            request.set("other goroutine")
            while out.cap and not len(out):
                gort.gosched()

        gort.go(other)
        return out.recv()

    assert gort.run(main, procs=procs) == "main"


def test_syscall_runs_in_the_callers_context(procs: int) -> None:
    def main() -> tuple[str, bool]:
        request.set("main")
        seen = gort.syscall(request.get)
        on_other_thread = gort.syscall(threading.get_ident) != threading.get_ident()
        return seen, on_other_thread

    assert gort.run(main, procs=procs) == ("main", True)
