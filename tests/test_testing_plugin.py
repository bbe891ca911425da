"""The pytest plugin (gort.testing), driven through pytester.

Each test writes a small test file, runs pytest on it with the plugin, and
checks the outcomes and the report a user reads.
"""

from __future__ import annotations

import os
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

pytest_plugins = ("pytester",)

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"


def _plugin_args() -> list[str]:
    """-p gort_pytest, unless the installed entry point already loads it."""
    eps = metadata.entry_points(group="pytest11")
    if any(ep.value == "gort_pytest" for ep in eps):
        return []
    return ["-p", "gort_pytest"]


def run(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_it=source)
    return pytester.runpytest(*_plugin_args(), "-p", "no:cacheprovider", *args)


def run_subprocess(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_it=source)
    return pytester.runpytest_subprocess(*_plugin_args(), "-p", "no:cacheprovider", *args)


@pytest.fixture(autouse=True)
def _src_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    # Subprocess runs import this tree's gort, as the inline ones do, and see
    # the same entry points as this process (_plugin_args decides for both).
    rest = os.environ.get("PYTHONPATH", "")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(SRC), rest) if p))


def test_entry_point_declared() -> None:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert data["project"]["entry-points"]["pytest11"] == {"gort": "gort_pytest"}


def test_passing_test_runs_as_goroutine_one(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        import pytest, gort

        @pytest.mark.gort
        def test_pingpong():
            assert gort.goid() == 1
            ping, pong = gort.chan(), gort.chan()
            def player():
                for v in ping:
                    pong.send(v + 1)
            gort.go(player)
            for i in range(3):
                ping.send(i)
                assert pong.recv() == i + 1
            ping.close()

        def test_unmarked_is_not_a_goroutine():
            with pytest.raises(RuntimeError, match="outside a goroutine"):
                gort.goid()
        """,
    )
    result.assert_outcomes(passed=2)


def test_gort_mode_ini_marks_every_test(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ngort_mode = true\n")
    result = run(
        pytester,
        """
        import gort

        def test_a():
            assert gort.goid() == 1

        def test_b():
            c = gort.chan()
            gort.go(c.send, "x")
            assert c.recv() == "x"
        """,
    )
    result.assert_outcomes(passed=2)


def test_procs_keyword(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        import pytest, gort

        @pytest.mark.gort(procs=2)
        def test_two():
            assert gort.gomaxprocs() == 2

        @pytest.mark.gort
        def test_default():
            assert gort.gomaxprocs() == 1
        """,
    )
    result.assert_outcomes(passed=2)


def test_failed_assert_keeps_pytest_message_and_adds_dump(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        import pytest, gort

        @pytest.mark.gort
        def test_wrong():
            c = gort.chan()
            gort.go(c.send, 1)
            assert c.recv() == 2
        """,
    )
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "assert 1 == 2" in out
    assert "goroutines at the panic:" in out
    result.stdout.fnmatch_lines(["*goroutine 1 [[]running[]]:", "*test_it.test_wrong(...)"])
    assert "panic: AssertionError" not in result.stderr.str()  # reported once, in the report


def test_panic_in_other_goroutine(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        import pytest, gort

        def worker(c):
            c.recv()
            raise ValueError("bad input 7")

        @pytest.mark.gort
        def test_it():
            c = gort.chan()
            gort.go(worker, c)
            c.send(1)
            gort.chan().recv()
        """,
    )
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "ValueError: bad input 7" in out
    result.stdout.fnmatch_lines(
        ["*goroutine 2 [[]running[]]:", "*test_it.worker(...)", "*goroutine 1 [[]*[]]:"]
    )


def test_deadlock_fails_with_dump(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        import pytest, gort

        @pytest.mark.gort
        def test_stuck():
            c = gort.chan()
            gort.go(c.recv)
            gort.chan().send(1)
        """,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*fatal error: all goroutines are asleep - deadlock!",
            "*goroutine 1 [[]chan send[]]:",
            "*test_it.test_stuck(...)",
            "*goroutine 2 [[]chan receive[]]:",
        ]
    )


def test_leaked_goroutine_fails_without_waiting_out_the_timeout(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\ngort_leak_timeout = 30\n")
    # In a fresh interpreter: inside this suite's process the heap holds the
    # objects of a thousand earlier tests, and the leak finder's backward
    # search stops at SEARCH_LIMIT and (soundly) calls the goroutine live.
    result = run_subprocess(
        pytester,
        """
        import pytest, gort

        def forgotten(c):
            gort.sleep(0.01)  # slower than the caller's patience
            c.send("late")

        @pytest.mark.gort
        def test_leaks():
            c = gort.chan()
            gort.go(forgotten, c)
            gort.select(c.recv, gort.after(0.001).recv)
        """,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*gort: 1 goroutine(s) still alive after the test*",
            "goroutine 2 [[]chan send (leaked)[]]:",
            "test_it.forgotten(...)",
            "*",
            "created by test_it.test_leaks in goroutine 1",
        ]
    )
    waited = float(re.search(r"waited (\d+\.\d+)s", result.stdout.str()).group(1))  # type: ignore[union-attr]
    assert waited < 30  # proven blocked forever: no need to wait the full leak timeout


def test_goroutine_that_finishes_late_is_waited_for(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        import pytest, gort

        @pytest.mark.gort
        def test_late():
            done = []
            gort.go(lambda: (gort.sleep(0.05), done.append(1)))
        """,
    )
    result.assert_outcomes(passed=1)


def test_still_running_goroutine_fails_after_leak_timeout(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ngort_leak_timeout = 0.1\n")
    result = run(
        pytester,
        """
        import pytest, gort

        def ticking():
            while True:
                gort.sleep(0.01)

        @pytest.mark.gort
        def test_ticks():
            gort.go(ticking)
        """,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["goroutine 2 [[]*[]]:", "test_it.ticking(...)"])  # or runnable


def test_allow_marker_names_exceptions(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        import os, threading, pytest, gort

        def background(c):
            c.recv()

        @pytest.mark.gort
        @pytest.mark.gort_allow("test_it.background")
        def test_goroutine_allowed():
            gort.go(background, gort.chan())

        @pytest.mark.gort
        @pytest.mark.gort_allow("test_it.*")
        def test_pattern_allowed():
            gort.go(background, gort.chan())

        @pytest.mark.gort
        @pytest.mark.gort_allow("other.function")
        def test_other_name_still_fails():
            gort.go(background, gort.chan())

        STOP = threading.Event()

        @pytest.mark.gort
        @pytest.mark.gort_allow(threads=["keeper*"], fds=["*kept.txt"])
        def test_thread_and_fd_allowed(tmp_path):
            threading.Thread(target=STOP.wait, name="keeper-1", daemon=True).start()
            global F
            F = open(tmp_path / "kept.txt", "w")

        def test_zz_cleanup():
            STOP.set()
            F.close()
        """,
    )
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(["*test_other_name_still_fails - Failed: gort: 1 goroutine*"])


def test_leftover_thread_and_descriptor_fail(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ngort_leak_timeout = 0.1\n")
    result = run(
        pytester,
        """
        import threading, pytest, gort

        STOP = threading.Event()

        def parked_forever():
            STOP.wait()

        @pytest.mark.gort
        def test_thread():
            threading.Thread(target=parked_forever, name="stray", daemon=True).start()

        @pytest.mark.gort
        def test_fd(tmp_path):
            global F
            F = open(tmp_path / "open.txt", "w")

        def test_zz_cleanup():
            STOP.set()
            F.close()
        """,
    )
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*gort: 1 thread(s) started by the test still running:",
            "thread 'stray' *",
            "*in parked_forever*",
        ]
    )
    result.stdout.fnmatch_lines(
        ["*gort: 1 descriptor(s) opened by the test still open:", "  fd * -> */open.txt"]
    )


def test_outcomes_pass_through(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        import pytest, gort

        @pytest.mark.gort
        def test_skips():
            gort.sleep(0.001)
            pytest.skip("not today")

        @pytest.mark.gort
        @pytest.mark.xfail(strict=True)
        def test_xfails():
            assert gort.goid() == 2

        @pytest.mark.gort
        def test_fails_explicitly():
            pytest.fail("told to")
        """,
    )
    result.assert_outcomes(skipped=1, xfailed=1, failed=1)
    result.stdout.fnmatch_lines(["*Failed: told to*"])


def test_plain_fixtures_run_inside_the_run(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        import pytest, gort

        @pytest.fixture
        def server():
            # A plain fixture runs in goroutine 1: it can start goroutines.
            assert gort.goid() == 1
            requests = gort.chan()
            def serve():
                for reply, x in requests:
                    reply.send(x * 2)
            gort.go(serve)
            return requests

        @pytest.fixture
        def client(server):
            def call(x):
                reply = gort.chan()
                server.send((reply, x))
                return reply.recv()
            return call

        @pytest.fixture
        def config():
            return {"n": 21}

        @pytest.fixture
        def resource(config):
            # A generator fixture stays outside: what it uses is computed outside.
            assert isinstance(config, dict)
            yield config["n"]

        @pytest.mark.gort
        @pytest.mark.gort_allow("test_it.server.<locals>.serve")
        def test_uses_fixtures(client, resource, server):
            assert client(resource) == 42

        @pytest.fixture
        def broken():
            raise KeyError("missing")

        @pytest.mark.gort
        def test_fixture_error(broken):
            pass
        """,
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*KeyError: 'missing'*"])


TIMEOUT_SOURCE = """
import pytest, gort

def spin():
    while True:
        pass

@pytest.mark.gort
@pytest.mark.timeout(1)
def test_hangs():
    gort.go(gort.chan().recv)
    gort.sleep(3600)

@pytest.mark.gort
@pytest.mark.timeout(1)
def test_spins():
    spin()

@pytest.mark.gort
def test_fine():
    gort.sleep(0.001)
"""


@pytest.mark.parametrize("method", ["signal", "thread"])
def test_pytest_timeout_dumps_goroutines(pytester: pytest.Pytester, method: str) -> None:
    result = run_subprocess(pytester, TIMEOUT_SOURCE, f"--timeout-method={method}")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*Timeout (>1s) from pytest-timeout.",
            "goroutines at the timeout:",
            "goroutine 1 [[]sleep[]]:",
            "test_it.test_hangs(...)",
            "goroutine 2 [[]chan receive[]]:",
        ]
    )
    result.stdout.fnmatch_lines(["goroutine 1 [[]running[]]:", "test_it.spin(...)"])


def test_works_under_xdist(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    source = "import pytest, gort\n\n" + "".join(
        f"""
@pytest.mark.gort
def test_{i}():
    c = gort.chan()
    gort.go(c.send, {i})
    assert c.recv() == {i}
"""
        for i in range(8)
    )
    source += """
@pytest.mark.gort
def test_leak():
    gort.go(gort.chan().recv)
"""
    result = run_subprocess(pytester, source, "-n", "2")
    result.assert_outcomes(passed=8, failed=1)
    result.stdout.fnmatch_lines(["*test_leak - Failed: gort: 1 goroutine(s) still alive*"])


def test_plugin_module_importable_without_gort_loaded() -> None:
    """The shim must not import gort at load time (see gort_pytest)."""
    import subprocess

    code = "import sys, gort_pytest; print('gort' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
        timeout=60,
        check=True,
    )
    assert out.stdout.strip() == "False"


def test_docs_example_passes(pytester: pytest.Pytester) -> None:
    """The pytest example in docs/testing.md passes as written."""
    text = (ROOT / "docs" / "testing.md").read_text()
    block = text.split("<!-- pytest-example -->\n```python\n", 1)[1].split("```", 1)[0]
    result = run(pytester, block, "--durations=0", "-vv")
    result.assert_outcomes(passed=3)
    # the hour-long timeout ran on the bubble's clock
    line = next(ln for ln in result.stdout.lines if "call" in ln and "hour_long" in ln)
    assert float(line.split("s")[0]) < 60
