"""The seeded scheduler: gort.run(main, seed=n) and GORT_SCHEDSEED."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

import gort
from gortproc import run_script


def _turns(names: str = "abcd", rounds: int = 3) -> list[str]:
    """Workers taking turns (gosched), then reporting done in upper case:
    the list records the order the scheduler chose."""
    out: list[str] = []
    done: gort.Chan = gort.chan()

    def worker(name: str) -> None:
        for i in range(rounds):
            out.append(f"{name}{i}")
            gort.gosched()
        done.send(name)

    for name in names:
        gort.go(worker, name)
    for _ in names:
        out.append(done.recv().upper())
    return out


def _interleaving() -> str:
    """_turns, then two ready channels raced by select."""
    out = _turns()
    a: gort.Chan = gort.chan(1)
    b: gort.Chan = gort.chan(1)
    for _ in range(8):
        a.send(None)
        b.send(None)
        first, _ = gort.select(a.recv, b.recv)
        out.append(str(first))
        gort.select(a.recv, b.recv)  # drain the other
    return " ".join(out)


def _select_only() -> str:
    c: gort.Chan = gort.chan(3)
    picks = []
    for _ in range(30):
        c.send(None)
        d: gort.Chan = gort.chan(1)
        d.send(None)
        picks.append(str(gort.select(c.recv, d.recv)[0]))
        while len(c):
            c.recv()
    return "".join(picks)


def test_same_seed_same_interleaving() -> None:
    for seed in (1, 12345):
        outputs = {gort.run(_interleaving, procs=1, seed=seed) for _ in range(20)}
        assert len(outputs) == 1, outputs


def test_same_seed_despite_preemption_marks() -> None:
    """What sysmon does on a loaded machine (mark the P for preemption and
    send channel operations to their general path) happens here on purpose,
    at clock-chosen moments: the seeded order must not change."""
    from gort.runtime.runtime2 import sched

    stop = threading.Event()

    def mark() -> None:
        while not stop.is_set():
            if sched.running and sched.allp:
                sched.allp[0].preempt = True
                sched.multi = True
            time.sleep(0.0001)

    marker = threading.Thread(target=mark, daemon=True)
    marker.start()
    try:
        outputs = {gort.run(_interleaving, procs=1, seed=99) for _ in range(20)}
    finally:
        stop.set()
        marker.join()
    assert outputs == {gort.run(_interleaving, procs=1, seed=99)}


def test_different_seeds_explore_different_orders() -> None:
    outputs = {gort.run(_interleaving, procs=1, seed=seed) for seed in range(10)}
    assert len(outputs) >= 5  # each is a valid interleaving ...
    for text in outputs:
        words = text.split()
        for name in "abcd":  # ... in which each worker still runs in order
            mine = [w for w in words if w[0] == name]
            assert mine == [f"{name}0", f"{name}1", f"{name}2"]
            assert words.index(name.upper()) > words.index(f"{name}2")


def test_select_choices_follow_the_seed() -> None:
    a = gort.run(_select_only, seed=7)
    assert gort.run(_select_only, seed=7) == a
    assert set(a) == {"0", "1"}  # both cases get chosen
    assert len({gort.run(_select_only, seed=s) for s in range(5)}) > 1


def test_unseeded_run_keeps_queue_order() -> None:
    """Without a seed the goroutines run in the ordinary (FIFO) order."""

    results = {" ".join(gort.run(_turns, "abc", 2, procs=1)) for _ in range(5)}
    assert results == {"c0 a0 b0 c1 a1 b1 C A B"}


def test_seeded_run_with_two_procs_delivers_everything() -> None:
    def main() -> int:
        results: gort.Chan = gort.chan(100)

        def worker(i: int) -> None:
            for _ in range(10):
                gort.gosched()
            results.send(i)

        for i in range(100):
            gort.go(worker, i)
        return sum(results.recv() for _ in range(100))

    assert gort.run(main, procs=2, seed=3) == sum(range(100))


@pytest.mark.parametrize("bad", ["1", 1.5, True])
def test_bad_seed_is_rejected_and_harmless(bad: object) -> None:
    with pytest.raises(TypeError, match=r"gort.run: seed must be an int, not"):
        gort.run(lambda: None, seed=bad)  # type: ignore[arg-type]
    assert gort.run(lambda: 5, seed=1) == 5


SCRIPT = """
import gort

def worker(name, out, done):
    for i in range(3):
        out.append(name + str(i))
        gort.gosched()
    done.send(name)

def main():
    out = []
    done = gort.chan()
    for name in "abcd":
        gort.go(worker, name, out, done)
    for _ in range(4):
        done.recv()
    print(" ".join(out))
    if gort.select(gort.after(0.001).recv)[0] == 0:
        raise ValueError("boom")
"""


def test_env_seed_and_panic_report(tmp_path: Path) -> None:
    first = run_script(tmp_path, SCRIPT, env={"GORT_SCHEDSEED": "42"})
    again = run_script(tmp_path, SCRIPT, env={"GORT_SCHEDSEED": "42"})
    assert first.returncode == 2
    assert first.stdout == again.stdout
    assert "panic: ValueError: boom" in first.stderr
    assert "gort: scheduler seed 42 (GORT_SCHEDSEED=42 replays it)" in first.stderr

    # GORT_SCHEDSEED=42 and seed=42 make the same choices.
    turns = [w for w in gort.run(_turns, seed=42) if w.islower()]
    assert first.stdout == " ".join(turns) + "\n"
    plain = run_script(tmp_path, SCRIPT)
    assert "scheduler seed" not in plain.stderr


def test_malformed_env_seed_is_ignored(tmp_path: Path) -> None:
    result = run_script(tmp_path, SCRIPT, env={"GORT_SCHEDSEED": "soon"})
    assert result.returncode == 2
    assert "scheduler seed" not in result.stderr
