"""gort.run: start-up, return value and arguments, init order, how a program ends
(return, panic, deadlock, sys.exit), running twice, and leaks of threads and descriptors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import gort

SRC = Path(__file__).resolve().parents[1] / "src"


def _spin(times: int = 200) -> None:
    for _ in range(times):
        gort.gosched()


def _python(code: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run a small program in a fresh interpreter (for state that is per process)."""
    script = tmp_path / "prog.py"
    script.write_text(textwrap.dedent(code))
    full_env = {k: v for k, v in os.environ.items() if k not in ("GOMAXPROCS", "GOTRACEBACK")}
    full_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(SRC), os.environ.get("PYTHONPATH", "")) if p
    )
    full_env.update(env)
    return subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        env=full_env,
        cwd=tmp_path,
        check=False,
    )


# --- start-up and results ---------------------------------------------------------------------


def test_run_returns_mains_value(procs: int) -> None:
    marker = object()
    assert gort.run(lambda: marker, procs=procs) is marker


def test_run_passes_positional_args(procs: int) -> None:
    def main(a: int, b: str, *rest: object) -> tuple[object, ...]:
        return (a, b, *rest)

    assert gort.run(main, 1, "two", [3], procs=procs) == (1, "two", [3])


def test_main_runs_as_goroutine_one(procs: int) -> None:
    assert gort.run(lambda: (gort.goid(), gort.num_goroutine()), procs=procs) == (1, 1)


def test_procs_argument_wins_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOMAXPROCS", "2")
    assert gort.run(gort.gomaxprocs) == 2
    assert gort.run(gort.gomaxprocs, procs=1) == 1
    monkeypatch.setenv("GOMAXPROCS", "1")
    assert gort.run(gort.gomaxprocs) == 1
    assert gort.run(gort.gomaxprocs, procs=2) == 2


def test_default_procs_without_env() -> None:
    # DESIGN: the default GOMAXPROCS is 1 on a GIL build, the CPU count on a free-threaded one.
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    expected = 1 if gil else os.cpu_count()
    assert gort.run(gort.gomaxprocs) == expected


@pytest.mark.parametrize("value", ["0", "-3", "abc", ""])
def test_invalid_gomaxprocs_env_is_ignored(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    # Go uses GOMAXPROCS only when it is a positive integer, else the default.
    default = gort.run(gort.gomaxprocs)
    monkeypatch.setenv("GOMAXPROCS", value)
    assert gort.run(gort.gomaxprocs) == default


def test_gomaxprocs_change_does_not_outlive_run() -> None:
    def main() -> int:
        return gort.gomaxprocs(2)

    assert gort.run(main, procs=1) == 1
    assert gort.run(gort.gomaxprocs, procs=1) == 1


def test_init_functions_run_in_order_before_main(tmp_path: Path, procs: int) -> None:
    proc = _python(
        f"""
        import json
        import gort

        order = []

        @gort.init
        def first():
            order.append(["first", gort.goid()])

        @gort.init
        def second():
            ch = gort.chan()
            gort.go(ch.send, "from a goroutine started by init")
            order.append(["second", gort.goid(), ch.recv()])

        def main():
            order.append(["main", gort.goid()])
            return order

        print(json.dumps(gort.run(main, procs={procs})))
        """,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [
        ["first", 1],
        ["second", 1, "from a goroutine started by init"],
        ["main", 1],
    ]


def test_panicking_init_stops_the_program_before_main(tmp_path: Path, procs: int) -> None:
    proc = _python(
        f"""
        import gort

        @gort.init
        def broken():
            raise ValueError("init failed")

        def main():
            print("main ran")

        try:
            gort.run(main, procs={procs})
        except gort.Panic as exc:
            print("Panic", type(exc.__cause__).__name__, exc.__cause__)
        """,
        tmp_path,
    )
    assert proc.stdout.splitlines() == ["Panic ValueError init failed"], proc.stderr
    assert "panic: ValueError: init failed" in proc.stderr


# --- outside a goroutine ------------------------------------------------------------------------

OUTSIDE_CALLS: list[tuple[str, Callable[[], object]]] = [
    ("gort.go", lambda: gort.go(print)),
    ("gosched", gort.gosched),
    ("goexit", gort.goexit),
    ("goid", gort.goid),
    ("select", lambda: gort.select(gort.chan().recv)),
    ("recv", lambda: gort.chan().recv()),
    ("recv2", lambda: gort.chan().recv2()),
    ("send", lambda: gort.chan().send(1)),
    ("recv", lambda: gort.nilchan.recv()),
]


@pytest.mark.parametrize(
    ("name", "call"), OUTSIDE_CALLS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(OUTSIDE_CALLS)]
)
def test_runtime_calls_outside_run_raise_runtime_error(
    name: str, call: Callable[[], object]
) -> None:
    with pytest.raises(RuntimeError, match=re.escape(name)):
        call()


def test_calls_outside_run_after_a_run_that_ended_multi_threaded() -> None:
    """A run that ends while sched.multi is set (several Ms were running, or a
    preemption mark was pending) leaves the runtime reset: a later call outside
    any run still gets the "outside a goroutine" error, not GreenletExit."""
    from gort.runtime.runtime2 import sched

    def mark() -> None:
        sched.multi = True  # as sysmon leaves it when it marks a P during teardown

    def main() -> None:
        sched.stop_hooks.append(mark)

    gort.run(main, procs=2)
    assert not sched.multi
    for name, call in OUTSIDE_CALLS:
        with pytest.raises(RuntimeError, match=re.escape(name)):
            call()


def test_channels_can_be_made_and_used_without_blocking_outside_run(procs: int) -> None:
    ch = gort.chan(2)
    ch.send("made outside")
    assert len(ch) == 1

    def main(ch: gort.chan) -> list[object]:
        ch.send("inside")
        return [ch.recv(), ch.recv()]

    assert gort.run(main, ch, procs=procs) == ["made outside", "inside"]


def test_run_inside_a_goroutine_is_runtime_error(procs: int) -> None:
    def main() -> str:
        try:
            gort.run(lambda: None)
        except RuntimeError as exc:
            return "RuntimeError: " + str(exc)
        return "nested run was accepted"

    assert gort.run(main, procs=procs).startswith("RuntimeError")


# --- the end of a program ---------------------------------------------------------------------


def _abandon_some(log: list[str]) -> str:
    """main of the two tests below: leaves goroutines blocked forever and one spinning."""

    def blocked_forever(ch: gort.chan) -> None:
        try:
            ch.recv()
            log.append("recv returned")
        finally:
            log.append("finally ran")

    ch = gort.chan()
    for _ in range(10):
        gort.go(blocked_forever, ch)
    gort.go(blocked_forever, gort.nilchan)
    gort.go(gort.select)
    gort.go(_spinner)
    _spin()
    return "main returned"


def test_run_returns_promptly_when_main_returns(procs: int) -> None:
    log: list[str] = []
    started = time.monotonic()
    assert gort.run(_abandon_some, log, procs=procs) == "main returned"
    assert time.monotonic() - started < 5
    assert "recv returned" not in log


def test_abandoned_goroutines_are_unwound_after_main_returns(procs: int) -> None:
    # Go abandons them with the process. A Python process lives on after run, so gort
    # unwinds them on their own thread during run's teardown: no code after their
    # blocking call runs, but their finally blocks do (files close, locks release),
    # all of it after main has returned and before run returns.
    log: list[str] = []

    def main() -> str:
        result = _abandon_some(log)
        log.append("main returning")
        return result

    assert gort.run(main, procs=procs) == "main returned"
    assert "recv returned" not in log
    assert log[0] == "main returning"
    assert log[1:] == ["finally ran"] * 11


def test_abandoned_goroutines_cannot_change_the_outcome(procs: int) -> None:
    # Once main has returned, nothing an abandoned goroutine does (or would do) matters.
    def raises_later() -> None:
        try:
            gort.chan().recv()
        finally:
            raise ValueError("after the end")

    def swallows() -> None:
        try:
            gort.chan().recv()
        except BaseException:
            pass
        while True:
            gort.gosched()

    def exits_later() -> None:
        try:
            gort.nilchan.recv()
        finally:
            sys.exit(3)

    def main() -> str:
        for f in (raises_later, swallows, exits_later):
            gort.go(f)
        _spin()
        return "main value"

    started = time.monotonic()
    assert gort.run(main, procs=procs) == "main value"
    assert time.monotonic() - started < 5


def _spinner() -> None:
    while True:
        gort.gosched()


def test_sys_exit_in_goroutine_ends_run(procs: int) -> None:
    def main() -> None:
        gort.go(sys.exit, 3)
        gort.go(_spinner)  # a goroutine that never ends
        gort.chan().recv()

    started = time.monotonic()
    with pytest.raises(SystemExit) as info:
        gort.run(main, procs=procs)
    assert info.value.code == 3
    assert time.monotonic() - started < 5


def test_sys_exit_in_main(procs: int) -> None:
    def main() -> None:
        sys.exit(4)

    with pytest.raises(SystemExit) as info:
        gort.run(main, procs=procs)
    assert info.value.code == 4


def test_sys_exit_without_status(procs: int) -> None:
    def main() -> None:
        done = gort.chan()

        def quitter() -> None:
            try:
                sys.exit()
            finally:
                done.close()

        gort.go(quitter)
        gort.nilchan.recv()

    with pytest.raises(SystemExit) as info:
        gort.run(main, procs=procs)
    assert info.value.code is None


DEADLOCKS: list[tuple[str, Callable[[], object]]] = [
    ("chan receive", lambda: gort.chan().recv()),
    ("chan receive", lambda: gort.chan(3).recv2()),
    ("chan receive", lambda: list(gort.chan())),
    ("chan send", lambda: gort.chan().send(1)),
    ("chan receive (nil chan)", lambda: gort.nilchan.recv()),
    ("chan send (nil chan)", lambda: gort.nilchan.send(1)),
    ("select", lambda: gort.select(gort.chan().recv, (gort.chan().send, 1))),
    ("select (no cases)", gort.select),
]


@pytest.mark.parametrize(
    ("reason", "block"), DEADLOCKS, ids=[f"{r}-{i}" for i, (r, _) in enumerate(DEADLOCKS)]
)
def test_deadlock_of_main_alone(
    procs: int, capfd: pytest.CaptureFixture[str], reason: str, block: Callable[[], object]
) -> None:
    with pytest.raises(gort.Deadlock) as info:
        gort.run(block, procs=procs)
    assert str(info.value) == "all goroutines are asleep - deadlock!"
    lines = capfd.readouterr().err.splitlines()
    first = "fatal error: all goroutines are asleep - deadlock!"
    assert first in lines, lines
    at = lines.index(first)
    assert lines[at + 1 : at + 3] == ["", f"goroutine 1 [{reason}]:"]


def test_deadlock_dump_lists_every_goroutine(procs: int, capfd: pytest.CaptureFixture[str]) -> None:
    ids: dict[str, int] = {}

    def sender(ch: gort.chan) -> None:
        ids["sender"] = gort.goid()
        ch.send(1)

    def nil_receiver() -> None:
        ids["nil_receiver"] = gort.goid()
        gort.nilchan.recv()

    def selector() -> None:
        ids["selector"] = gort.goid()
        gort.select(gort.chan().recv, gort.chan().recv)

    def main() -> None:
        full = gort.chan()
        gort.go(sender, full)
        gort.go(nil_receiver)
        gort.go(selector)
        _spin()
        gort.chan().recv()

    with pytest.raises(gort.Deadlock):
        gort.run(main, procs=procs)
    err = capfd.readouterr().err
    assert "goroutine 1 [chan receive]:" in err
    assert f"goroutine {ids['sender']} [chan send]:" in err
    assert f"goroutine {ids['nil_receiver']} [chan receive (nil chan)]:" in err
    assert f"goroutine {ids['selector']} [select]:" in err
    # each goroutine appears once, main first
    heads = re.findall(r"^goroutine (\d+) \[", err, flags=re.MULTILINE)
    assert heads[0] == "1"
    assert sorted(map(int, heads)) == sorted([1, *ids.values()])


def test_deadlock_after_work_is_done(procs: int) -> None:
    # Plenty of traffic first, then everybody waits: the detector must still fire.
    def worker(inbox: gort.chan, outbox: gort.chan) -> None:
        for v in inbox:
            outbox.send(v)

    def main() -> None:
        a, b = gort.chan(), gort.chan()
        for _ in range(20):
            gort.go(worker, a, b)
        for i in range(500):
            a.send(i)
            b.recv()
        b.recv()  # nobody will send

    with pytest.raises(gort.Deadlock):
        gort.run(main, procs=procs)


# --- run twice ----------------------------------------------------------------------------------


def test_run_twice_in_one_process(procs: int) -> None:
    def main(k: int) -> tuple[int, int, int]:
        ch = gort.chan()
        for i in range(k):
            gort.go(ch.send, i)
        stuck = gort.chan()
        for _ in range(5):
            gort.go(stuck.recv)  # abandoned when main returns
        total = sum(ch.recv() for _ in range(k))
        return gort.goid(), gort.num_goroutine() >= 1, total

    assert gort.run(main, 10, procs=procs) == (1, True, 45)
    assert gort.run(main, 20, procs=procs) == (1, True, 190)


def test_second_run_starts_clean(procs: int) -> None:
    def first() -> None:
        stuck = gort.chan()
        for _ in range(5):
            gort.go(stuck.recv)
        gort.go(gort.select)
        _spin()

    def second() -> tuple[int, int]:
        return gort.goid(), gort.num_goroutine()

    gort.run(first, procs=procs)
    assert gort.run(second, procs=procs) == (1, 1)


def test_run_after_panic_after_deadlock_and_after_exit(procs: int) -> None:
    def boom() -> None:
        raise ValueError("boom")

    with pytest.raises(gort.Panic):
        gort.run(boom, procs=procs)
    assert gort.run(lambda: "after panic", procs=procs) == "after panic"
    with pytest.raises(gort.Deadlock):
        gort.run(lambda: gort.chan().recv(), procs=procs)
    assert gort.run(lambda: "after deadlock", procs=procs) == "after deadlock"
    with pytest.raises(SystemExit):
        gort.run(sys.exit, 5, procs=procs)
    assert gort.run(lambda: "after exit", procs=procs) == "after exit"
    # and the detector still works in a fresh run
    with pytest.raises(gort.Deadlock):
        gort.run(lambda: gort.chan().send(0), procs=procs)


# --- leaks --------------------------------------------------------------------------------------


def _fds() -> dict[str, str]:
    out = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            out[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            pass  # the descriptor of the listing itself, closed already
    return out


def _os_threads() -> int:
    return len(os.listdir("/proc/self/task"))


def _settle_os_threads() -> None:
    """Wait (briefly) until every OS thread is a live Python thread."""
    deadline = time.monotonic() + 2
    while _os_threads() > threading.active_count() and time.monotonic() < deadline:
        time.sleep(0.01)


def _echo(inbox: gort.chan, outbox: gort.chan) -> None:
    for v in inbox:
        outbox.send(v)


def _normal() -> None:
    a, b = gort.chan(), gort.chan(4)
    for _ in range(20):
        gort.go(_echo, a, b)
    for i in range(200):
        a.send(i)
        b.recv()


def _panicking() -> None:
    gort.go(_raise)
    gort.chan().recv()


def _raise() -> None:
    raise ValueError("leak check")


def _deadlocking() -> None:
    gort.go(gort.chan().send, 1)
    gort.chan().recv()


def _exiting() -> None:
    gort.go(sys.exit, 9)
    gort.nilchan.recv()


def _abandoning() -> None:
    for _ in range(50):
        gort.go(gort.chan().recv)
    _spin()


def _growing() -> None:
    gort.gomaxprocs(4)
    _normal()


SCENARIOS: dict[str, tuple[Callable[[], None], type[BaseException] | None]] = {
    "normal": (_normal, None),
    "panic": (_panicking, gort.Panic),
    "deadlock": (_deadlocking, gort.Deadlock),
    "exit": (_exiting, SystemExit),
    "abandon": (_abandoning, None),
    "gomaxprocs4": (_growing, None),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_no_leaked_threads_or_descriptors(procs: int, scenario: str) -> None:
    main, raises = SCENARIOS[scenario]
    _settle_os_threads()  # an earlier test's thread may still be ending
    threads_before = set(threading.enumerate())
    fds_before = _fds()
    os_threads_before = _os_threads()
    if raises is None:
        gort.run(main, procs=procs)
    else:
        with pytest.raises(raises):
            gort.run(main, procs=procs)
    assert set(threading.enumerate()) <= threads_before  # nothing new left running
    assert _fds().items() <= fds_before.items()  # nothing new left open
    # an OS thread may take a moment to disappear after its Python side has finished
    deadline = time.monotonic() + 2
    while _os_threads() > os_threads_before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _os_threads() <= os_threads_before


def test_no_leaks_after_many_runs(procs: int) -> None:
    threads_before = set(threading.enumerate())
    fds_before = _fds()
    for _ in range(30):
        gort.run(_normal, procs=procs)
    assert set(threading.enumerate()) <= threads_before  # nothing new left running
    assert _fds().items() <= fds_before.items()  # nothing new left open


def _off_main_thread(kind: str) -> str:
    """main for the test below: CPU-bound goroutines spread over both Ps; the first one that
    runs on a thread other than the caller's ends the program the way ``kind`` says."""
    caller = threading.get_ident()
    out = gort.chan()

    def worker(i: int) -> None:
        end = time.monotonic() + 0.01
        while time.monotonic() < end:
            pass  # no yield: the idle P has to take the other goroutines
        if threading.get_ident() != caller:
            if kind == "panic":
                raise ValueError(f"panic on another thread ({i})")
            if kind == "exit":
                sys.exit(6)
            gort.chan().recv()  # "deadlock"
        out.send(i)

    for i in range(10):
        gort.go(worker, i)
    for _ in range(10):
        out.recv()
    return "no goroutine ran on the second P"


@pytest.mark.parametrize(
    ("kind", "raises"), [("panic", gort.Panic), ("exit", SystemExit), ("deadlock", gort.Deadlock)]
)
def test_program_ends_from_another_thread_without_leaks(
    kind: str, raises: type[BaseException]
) -> None:
    threads_before = set(threading.enumerate())
    fds_before = _fds()
    with pytest.raises(raises):
        gort.run(_off_main_thread, kind, procs=2)
    assert set(threading.enumerate()) <= threads_before  # nothing new left running
    assert _fds().items() <= fds_before.items()  # nothing new left open


def test_no_user_code_resumes_while_goroutines_are_unwound(procs: int) -> None:
    # During the unwinding after main returns, a finally-block may hand a value to
    # another goroutine; that goroutine must not run on (it is abandoned too).
    log: list[str] = []

    def x(ch: gort.chan) -> None:
        try:
            ch.recv()
        finally:
            gort.chan(1).send(0)  # an operation that completes without blocking

    def a(ch: gort.chan, other: gort.chan, done: gort.chan) -> None:
        try:
            ch.recv()
        finally:
            log.append("A finally")
            other.send(1)
            done.recv()
            log.append("A after done.recv")

    def b(other: gort.chan) -> None:
        other.recv()
        log.append("B ran after main returned")

    def main() -> str:
        ch, other, done = gort.chan(), gort.chan(), gort.chan()
        gort.go(x, ch)
        gort.go(a, ch, other, done)
        gort.go(b, other)
        gort.sleep(0.01)  # all three start on P0 and block
        gort.gomaxprocs(2)  # channel operations take the locking path too
        gort.sleep(0.01)
        return "main returned"

    assert gort.run(main, procs=procs) == "main returned"
    assert log == ["A finally"]


def test_run_refuses_an_async_main() -> None:
    async def main() -> None:
        pass

    with pytest.raises(TypeError, match="async function; gort runs plain functions"):
        gort.run(main)
    assert gort.run(lambda: "next") == "next"
