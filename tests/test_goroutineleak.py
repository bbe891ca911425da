"""gort.leaks(): goroutines blocked forever, and GODEBUG=leakcheck=1."""

from __future__ import annotations

from pathlib import Path

import pytest

import gort
from gort import sync
from gortproc import run_script

GLOBAL_CH: gort.Chan | None = None
GLOBAL_MU: sync.Mutex | None = None


def _leaked_goids() -> list[int]:
    """The goids gort.leaks() reports, in order."""
    return [int(block.split()[1]) for block in gort.leaks()]


def _settle() -> None:
    """Let every runnable goroutine run until it parks."""
    for _ in range(5):
        gort.gosched()


def test_blocked_on_channel_only_it_references(procs: int) -> None:
    def main() -> list[str]:
        c: gort.Chan = gort.chan()
        gort.go(c.recv)
        del c
        _settle()
        return gort.leaks()

    blocks = gort.run(main, procs=procs)
    assert len(blocks) == 1
    head, *rest = blocks[0].split("\n")
    assert head == "goroutine 2 [chan receive (leaked)]:"
    assert rest[-2].startswith("created by test_goroutineleak.")


def test_forgotten_sender_after_timeout(procs: int) -> None:
    def fetch(out: gort.Chan) -> None:
        gort.sleep(0.02)  # slower than the caller waits
        out.send("result")

    def query() -> object:
        out: gort.Chan = gort.chan()
        gort.go(fetch, out)
        return gort.select(out.recv, gort.after(0.001).recv)

    def main() -> tuple[object, list[int], list[int]]:
        got = query()
        before = _leaked_goids()  # fetch still sleeps: not blocked
        gort.sleep(0.05)
        return got, before, _leaked_goids()

    got, before, after = gort.run(main, procs=procs)
    assert got[0] == 1  # type: ignore[index]  # the timeout won
    assert before == []
    assert after == [2]


def test_channel_held_by_global_is_not_a_leak(procs: int) -> None:
    def main() -> list[int]:
        global GLOBAL_CH
        GLOBAL_CH = gort.chan()
        gort.go(GLOBAL_CH.recv)
        _settle()
        found = _leaked_goids()
        GLOBAL_CH.close()
        GLOBAL_CH = None
        return found

    assert gort.run(main, procs=procs) == []


def test_channel_held_by_running_goroutine_is_not_a_leak(procs: int) -> None:
    def main() -> list[int]:
        c: gort.Chan = gort.chan()
        gort.go(c.recv)
        _settle()
        found = _leaked_goids()  # main itself holds c
        c.send(1)
        return found

    assert gort.run(main, procs=procs) == []


def test_channel_held_by_a_live_blocked_goroutine_chain(procs: int) -> None:
    """A waits on a, B holds a and waits on b, main holds b: nobody leaked.
    Drop b and both are leaked (the fixed point)."""

    def relay(a: gort.Chan, b: gort.Chan) -> None:
        b.recv()
        a.send(1)

    def main() -> tuple[list[int], list[int]]:
        a: gort.Chan = gort.chan()
        b: gort.Chan = gort.chan()
        gort.go(a.recv)
        gort.go(relay, a, b)
        del a
        _settle()
        alive = _leaked_goids()
        holder = [b]
        del b
        holder.clear()
        return alive, _leaked_goids()

    alive, dropped = gort.run(main, procs=procs)
    assert alive == []
    assert dropped == [2, 3]


def test_waiting_on_timer_or_sleep_is_not_a_leak(procs: int) -> None:
    def main() -> list[int]:
        gort.go(gort.sleep, 0.05)
        gort.go(lambda: gort.after(0.05).recv())
        gort.go(lambda: gort.select(gort.chan().recv, gort.after(0.05).recv))
        _settle()
        return _leaked_goids()

    assert gort.run(main, procs=procs) == []


def test_nil_channel_and_empty_select_always_leak(procs: int) -> None:
    def main() -> list[str]:
        gort.go(gort.nilchan.recv)
        gort.go(gort.select)
        _settle()
        return gort.leaks()

    blocks = gort.run(main, procs=procs)
    assert [b.split("\n")[0] for b in blocks] == [
        "goroutine 2 [chan receive (nil chan) (leaked)]:",
        "goroutine 3 [select (no cases) (leaked)]:",
    ]


def test_select_waiter_leaks_only_when_every_channel_is_unreachable(procs: int) -> None:
    def main() -> tuple[list[int], list[int]]:
        kept: gort.Chan = gort.chan()
        dropped: gort.Chan = gort.chan()
        gort.go(gort.select, kept.recv, dropped.recv)
        del dropped
        _settle()
        first = _leaked_goids()
        del kept
        return first, _leaked_goids()

    first, second = gort.run(main, procs=procs)
    assert first == []
    assert second == [2]


def test_waiting_on_a_syscall_is_not_a_leak() -> None:
    import threading

    release = threading.Event()

    def main() -> list[int]:
        done: gort.Chan = gort.chan(1)
        gort.go(lambda: done.send(gort.syscall(release.wait, 5)))
        gort.sleep(0.01)
        found = _leaked_goids()
        release.set()
        done.recv()
        return found

    assert gort.run(main) == []


def test_leaks_outside_a_goroutine() -> None:
    with pytest.raises(RuntimeError, match=r"gort.leaks called outside a goroutine"):
        gort.leaks()


def test_godebug_leakcheck_reports_at_end_of_run(tmp_path: Path) -> None:
    source = """
        import gort

        def worker(c):
            c.send(1)

        def main():
            gort.go(worker, gort.chan())
            gort.sleep(0.01)
            print("main done")
    """
    off = run_script(tmp_path, source)
    assert off.returncode == 0 and off.stderr == ""
    on = run_script(tmp_path, source, env={"GODEBUG": "leakcheck=1"})
    assert on.returncode == 0
    assert on.stdout == "main done\n"
    lines = on.stderr.splitlines()
    assert lines[0] == "gort: leakcheck: 1 goroutine(s) blocked forever:"
    assert lines[2] == "goroutine 2 [chan send (leaked)]:"
    assert lines[3] == "prog.worker(...)"


def _cond_waiter(mu: sync.Mutex, cond: sync.Cond) -> None:
    with mu:
        cond.wait()


def _start_sync_waiters() -> None:
    """A goroutine on a Mutex and one on a Cond, both only they reference."""
    mu = sync.Mutex()
    mu.lock()
    gort.go(mu.lock)
    m2 = sync.Mutex()
    gort.go(_cond_waiter, m2, sync.Cond(m2))


def test_sync_mutex_and_cond_leaks(procs: int) -> None:
    def main() -> list[str]:
        global GLOBAL_MU
        _start_sync_waiters()
        GLOBAL_MU = sync.Mutex()
        GLOBAL_MU.lock()
        gort.go(GLOBAL_MU.lock)  # held by a global: can be unlocked
        kept = sync.Mutex()
        kept.lock()
        gort.go(kept.lock)  # held by main, which is running
        _settle()
        found = gort.leaks()
        kept.unlock()
        GLOBAL_MU.unlock()
        GLOBAL_MU = None
        return found

    blocks = gort.run(main, procs=procs)
    assert [b.split("\n")[0] for b in blocks] == [
        "goroutine 2 [sync.Mutex.Lock (leaked)]:",
        "goroutine 3 [sync.Cond.Wait (leaked)]:",
    ]
    assert "test_goroutineleak._cond_waiter(...)" in blocks[1]
