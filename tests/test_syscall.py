"""gort.syscall: blocking calls on helper threads while other goroutines keep running."""

from __future__ import annotations

import errno
import re
import threading
import time
from pathlib import Path

import pytest

import gort
from gortproc import run_script


class Boom(Exception):
    pass


# --- values and exceptions ---------------------------------------------------------------


def test_syscall_returns_value(procs: int) -> None:
    def main() -> list[object]:
        return [
            gort.syscall(lambda: 42),
            gort.syscall(pow, 2, 10),
            gort.syscall(divmod, 17, 5),
            gort.syscall(lambda: None),
            gort.syscall(time.sleep, 0.01),
        ]

    assert gort.run(main, procs=procs) == [42, 1024, (3, 2), None, None]


def test_syscall_returns_the_same_object(procs: int) -> None:
    obj = object()

    def main() -> bool:
        return gort.syscall(lambda x: x, obj) is obj

    assert gort.run(main, procs=procs) is True


def test_syscall_runs_on_another_thread(procs: int) -> None:
    def main() -> tuple[int, int]:
        return threading.get_ident(), gort.syscall(threading.get_ident)

    caller, helper = gort.run(main, procs=procs)
    assert caller != helper


def test_syscall_raises_the_exception_unchanged(procs: int) -> None:
    original = Boom("disk on fire")

    def fail() -> None:
        raise original

    def main() -> tuple[object, int, int]:
        before = gort.goid()
        try:
            gort.syscall(fail)
        except Boom as e:
            return e, before, gort.goid()
        return None, before, gort.goid()

    caught, before, after = gort.run(main, procs=procs)
    assert caught is original
    assert str(caught) == "disk on fire"
    assert before == after == 1


def test_syscall_oserror_keeps_errno(procs: int, tmp_path: Path) -> None:
    missing = str(tmp_path / "missing")

    def main() -> tuple[type[BaseException], int | None, str | None]:
        try:
            gort.syscall(open, missing)
        except OSError as e:
            return type(e), e.errno, e.filename
        raise AssertionError("open of a missing file succeeded")

    kind, code, filename = gort.run(main, procs=procs)
    assert kind is FileNotFoundError
    assert code == errno.ENOENT
    assert filename == missing


def test_syscall_exception_traceback_includes_fn(procs: int) -> None:
    def failing_call() -> None:
        raise Boom("x")

    def main() -> list[str]:
        try:
            gort.syscall(failing_call)
        except Boom as e:
            tb = e.__traceback__
            names = []
            while tb is not None:
                names.append(tb.tb_frame.f_code.co_name)
                tb = tb.tb_next
            return names
        return []

    assert "failing_call" in gort.run(main, procs=procs)


def test_uncaught_syscall_exception_is_a_panic(
    procs: int, capsys: pytest.CaptureFixture[str]
) -> None:
    def fail() -> None:
        raise Boom("in the call")

    def main() -> None:
        gort.syscall(fail)

    with pytest.raises(gort.Panic) as info:
        gort.run(main, procs=procs)
    assert isinstance(info.value.__cause__, Boom)
    assert "panic: Boom: in the call" in capsys.readouterr().err


def test_syscall_outside_run_is_runtime_error() -> None:
    with pytest.raises(RuntimeError, match="syscall"):
        gort.syscall(time.sleep, 0)


def test_runtime_call_inside_syscall_fn_is_runtime_error(procs: int) -> None:
    # fn runs on a helper thread, which is not a goroutine: a runtime call that needs one
    # is refused there (and the refusal reaches the caller), it does not hang.
    def main() -> str:
        try:
            gort.syscall(gort.sleep, 0.01)
        except RuntimeError as e:
            return str(e)
        return "no error"

    assert "sleep" in gort.run(main, procs=procs)


def test_values_do_not_mix_between_goroutines(procs: int) -> None:
    n = 50

    def main() -> dict[int, int]:
        out = gort.chan(n)

        def worker(i: int) -> None:
            out.send((i, gort.syscall(lambda x: (time.sleep(0.001), x * 2)[1], i)))

        for i in range(n):
            gort.go(worker, i)
        return dict(out.recv() for _ in range(n))

    assert gort.run(main, procs=procs) == {i: 2 * i for i in range(n)}


# --- concurrency -------------------------------------------------------------------------


def test_hundred_blocking_syscalls_run_concurrently(procs: int) -> None:
    # The issue: 100 goroutines each calling gort.syscall(time.sleep, 0.2) finish in well
    # under a second (run one after the other they would take 20 s).
    n = 100

    def main() -> float:
        done = gort.chan(n)
        t0 = time.monotonic()

        def worker() -> None:
            gort.syscall(time.sleep, 0.2)
            done.send(None)

        for _ in range(n):
            gort.go(worker)
        for _ in range(n):
            done.recv()
        return time.monotonic() - t0

    elapsed = gort.run(main, procs=procs)
    assert elapsed >= 0.2
    assert elapsed < 1.0


def test_other_goroutines_run_during_syscall(procs: int) -> None:
    def main() -> tuple[int, bool]:
        in_call = gort.chan(1)
        finished: list[bool] = []

        def blocker() -> None:
            in_call.send(None)
            gort.syscall(time.sleep, 1.0)
            finished.append(True)

        gort.go(blocker)
        in_call.recv()
        tk = gort.Ticker(0.01)
        ticks = 0
        for _ in range(5):
            tk.c.recv()
            ticks += 1
        tk.stop()
        return ticks, bool(finished)

    # five 10 ms ticks arrive while the 1 s call is still running
    assert gort.run(main, procs=procs) == (5, False)


def test_main_in_syscall_lets_goroutines_run(procs: int) -> None:
    def main() -> list[int]:
        log: list[int] = []

        def counter() -> None:
            for i in range(5):
                log.append(i)
                gort.sleep(0.005)

        gort.go(counter)
        gort.syscall(time.sleep, 0.3)
        return log

    assert gort.run(main, procs=procs) == [0, 1, 2, 3, 4]


def test_cpu_goroutine_runs_while_main_in_syscall_on_one_p() -> None:
    # With one P, the P is handed off while main blocks in the call.
    def main() -> int:
        count = 0

        def spin() -> None:
            nonlocal count
            end = time.monotonic() + 0.1
            while time.monotonic() < end:
                count += 1

        gort.go(spin)
        gort.syscall(time.sleep, 0.3)
        return count

    assert gort.run(main, procs=1) > 0


# --- checkdead and the dump ----------------------------------------------------------------


def test_goroutine_in_syscall_is_not_deadlock(procs: int) -> None:
    # main waits on a channel; the only other goroutine is inside a blocking call: no Ps
    # are busy and no timers are pending, yet this is no deadlock.
    def main() -> str:
        ch = gort.chan()

        def blocker() -> None:
            ch.send(gort.syscall(lambda: (time.sleep(0.1), "done")[1]))

        gort.go(blocker)
        return ch.recv()

    assert gort.run(main, procs=procs) == "done"


def test_main_in_syscall_is_not_deadlock(procs: int) -> None:
    def main() -> str:
        gort.go(gort.nilchan.recv)
        return gort.syscall(lambda: (time.sleep(0.1), "ok")[1])

    assert gort.run(main, procs=procs) == "ok"


def test_deadlock_after_syscall_returns(procs: int, capsys: pytest.CaptureFixture[str]) -> None:
    def main() -> None:
        gort.syscall(time.sleep, 0.05)
        gort.chan().recv()

    with pytest.raises(gort.Deadlock):
        gort.run(main, procs=procs)
    assert "fatal error: all goroutines are asleep - deadlock!" in capsys.readouterr().err


@pytest.mark.parametrize("procs_env", ["1", "2"])
def test_dump_shows_syscall_status(tmp_path: Path, procs_env: str) -> None:
    proc = run_script(
        tmp_path,
        """
        import time
        import gort

        def blocker(ready):
            ready.send(gort.goid())
            gort.syscall(time.sleep, 1.0)

        def main():
            ready = gort.chan()
            gort.go(blocker, ready)
            print(ready.recv(), flush=True)
            gort.sleep(0.2)
            raise ValueError("boom")
        """,
        env={"GOTRACEBACK": "all", "GOMAXPROCS": procs_env},
    )
    assert proc.returncode == 2, proc.stderr
    gid = int(proc.stdout.split()[0])
    assert "panic: ValueError: boom" in proc.stderr
    assert re.search(rf"^goroutine {gid} \[syscall\]:$", proc.stderr, re.M), proc.stderr


@pytest.mark.parametrize("procs_env", ["1", "2"])
def test_syscall_does_not_trip_blocking_detector(tmp_path: Path, procs_env: str) -> None:
    proc = run_script(
        tmp_path,
        """
        import time
        import gort

        def main():
            gort.syscall(time.sleep, 0.3)
            print("ok")
        """,
        env={"GODEBUG": "blockthreshold=50ms", "GOMAXPROCS": procs_env},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "ok\n"
    assert "runtime: goroutine" not in proc.stderr


def test_a_helper_thread_that_cannot_start_leaves_nothing_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Out of threads: the call raises, and the call it never made is not "in flight"
    # (so a deadlock afterwards is still reported).
    def no_thread(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    def main() -> str:
        monkeypatch.setattr(threading.Thread, "start", no_thread)
        try:
            gort.syscall(time.sleep, 0)
        except RuntimeError as e:
            err = str(e)
        monkeypatch.undo()
        gort.chan().recv()  # a deadlock: nothing could wake main
        return err

    with pytest.raises(gort.Deadlock):
        gort.run(main)
