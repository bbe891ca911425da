"""The command line: ``python -m gort [--procs N] script.py args...`` in a subprocess."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from itertools import pairwise
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
EXAMPLES = ROOT / "examples"


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("GOMAXPROCS", "GOTRACEBACK", "GODEBUG", "PYTHONSTARTUP")
    }
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def gort_cli(
    *args: str, cwd: Path, procs: int | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "gort"]
    if procs is not None:
        cmd += ["--procs", str(procs)]
    return subprocess.run(
        [*cmd, *args],
        cwd=cwd,
        env=_env(**(env or {})),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def script(tmp_path: Path, source: str, name: str = "prog.py") -> str:
    (tmp_path / name).write_text(textwrap.dedent(source))
    return name


# --- normal runs ------------------------------------------------------------------------------


def test_exit_zero_and_output(tmp_path: Path, procs: int) -> None:
    prog = script(
        tmp_path,
        """
        import gort

        def main():
            ch = gort.chan()
            gort.go(ch.send, "hello from a goroutine")
            print(ch.recv())
        """,
    )
    proc = gort_cli(prog, cwd=tmp_path, procs=procs)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "hello from a goroutine\n", "")


def test_exit_zero_whatever_main_returns(tmp_path: Path, procs: int) -> None:
    prog = script(tmp_path, "def main():\n    return 7\n")
    proc = gort_cli(prog, cwd=tmp_path, procs=procs)
    assert proc.returncode == 0, proc.stderr


def test_sys_argv_name_and_main_block(tmp_path: Path, procs: int) -> None:
    prog = script(
        tmp_path,
        """
        import json
        import sys
        import gort

        def main():
            print(json.dumps([sys.argv, __name__, gort.goid()]))

        if __name__ == "__main__":
            print("the __main__ block ran")
            gort.run(main)
        """,
    )
    proc = gort_cli(prog, "a b", "--procs", "-x", "", cwd=tmp_path, procs=procs)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        json.dumps([["prog.py", "a b", "--procs", "-x", ""], "prog", 1])
    ]


def test_sys_argv_with_absolute_script_path(tmp_path: Path, procs: int) -> None:
    script(tmp_path, "import sys\n\ndef main():\n    print(repr(sys.argv))\n", name="tool.py")
    path = str(tmp_path / "tool.py")
    proc = gort_cli(path, "one", cwd=ROOT, procs=procs)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == repr([path, "one"])


def test_procs_flag_and_env(tmp_path: Path) -> None:
    prog = script(tmp_path, "import gort\n\ndef main():\n    print(gort.gomaxprocs())\n")
    assert gort_cli(prog, cwd=tmp_path, procs=2).stdout.strip() == "2"
    assert gort_cli(prog, cwd=tmp_path, procs=1).stdout.strip() == "1"
    both = gort_cli(prog, cwd=tmp_path, procs=1, env={"GOMAXPROCS": "2"})
    assert both.stdout.strip() == "1", both.stderr
    env_only = gort_cli(prog, cwd=tmp_path, env={"GOMAXPROCS": "2"})
    assert env_only.stdout.strip() == "2", env_only.stderr


def test_init_functions_run_before_main(tmp_path: Path, procs: int) -> None:
    prog = script(
        tmp_path,
        """
        import gort

        @gort.init
        def setup_a():
            print("init a")

        @gort.init
        def setup_b():
            print("init b")

        def main():
            print("main")
        """,
    )
    proc = gort_cli(prog, cwd=tmp_path, procs=procs)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["init a", "init b", "main"]


def test_script_without_main(tmp_path: Path, procs: int) -> None:
    prog = script(tmp_path, "x = 1\n", name="nomain.py")
    proc = gort_cli(prog, cwd=tmp_path, procs=procs)
    assert proc.returncode == 2
    assert "gort: nomain.py has no main()" in proc.stderr


def test_sys_exit_status(tmp_path: Path, procs: int) -> None:
    prog = script(
        tmp_path,
        """
        import sys
        import gort

        def main():
            print("before exit", flush=True)
            gort.go(sys.exit, 3)
            gort.chan().recv()
        """,
    )
    proc = gort_cli(prog, cwd=tmp_path, procs=procs)
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == "before exit\n"


# --- panics and deadlocks -----------------------------------------------------------------------

PANICKY = """
import time
import gort

def explode():
    # give main ample time (several GIL switch intervals) to park in its receive
    deadline = time.monotonic() + 0.1
    while time.monotonic() < deadline:
        gort.gosched()
    raise ValueError("boom")

def main():
    print("written before the panic")
    gort.go(explode)
    gort.chan().recv()
"""


def _goroutine_heads(err: str) -> list[str]:
    return re.findall(r"^goroutine \d+ \[[^\]]*\]:$", err, flags=re.MULTILINE)


def test_panic_exit_status_and_report(tmp_path: Path, procs: int) -> None:
    prog = script(tmp_path, PANICKY)
    proc = gort_cli(prog, cwd=tmp_path, procs=procs)
    assert proc.returncode == 2
    # stdout is flushed before the report, as Go's output would already be written
    assert proc.stdout == "written before the panic\n"
    lines = proc.stderr.splitlines()
    assert lines[:2] == ["panic: ValueError: boom", ""], proc.stderr
    assert re.fullmatch(r"goroutine \d+ \[running\]:", lines[2]), proc.stderr
    assert lines[2] != "goroutine 1 [running]:"
    assert "explode" in proc.stderr
    assert "prog.py:" in proc.stderr
    assert "created by" in proc.stderr
    # GOTRACEBACK=single (the default): only the panicking goroutine
    assert len(_goroutine_heads(proc.stderr)) == 1
    # the report is Go's, not a Python traceback of the runtime
    assert "Traceback (most recent call last)" not in proc.stderr


def test_panic_gotraceback_none(tmp_path: Path, procs: int) -> None:
    prog = script(tmp_path, PANICKY)
    proc = gort_cli(prog, cwd=tmp_path, procs=procs, env={"GOTRACEBACK": "none"})
    assert proc.returncode == 2
    assert [line for line in proc.stderr.splitlines() if line] == ["panic: ValueError: boom"]


def test_panic_gotraceback_all(tmp_path: Path, procs: int) -> None:
    prog = script(tmp_path, PANICKY)
    proc = gort_cli(prog, cwd=tmp_path, procs=procs, env={"GOTRACEBACK": "all"})
    assert proc.returncode == 2
    heads = _goroutine_heads(proc.stderr)
    assert len(heads) == 2, proc.stderr
    assert heads[0].endswith(" [running]:")
    assert "goroutine 1 [chan receive]:" in heads


def test_panic_with_go_message(tmp_path: Path, procs: int) -> None:
    prog = script(
        tmp_path,
        """
        import gort

        def main():
            ch = gort.chan(1)
            ch.close()
            ch.close()
        """,
    )
    proc = gort_cli(prog, cwd=tmp_path, procs=procs)
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[:3] == [
        "panic: close of closed channel",
        "",
        "goroutine 1 [running]:",
    ]


def test_deadlock_exit_status_and_report(tmp_path: Path, procs: int) -> None:
    prog = script(
        tmp_path,
        """
        import gort

        def main():
            print("written before the deadlock")
            ch = gort.chan()
            gort.go(gort.chan().send, 1)
            ch.recv()
        """,
    )
    proc = gort_cli(prog, cwd=tmp_path, procs=procs)
    assert proc.returncode == 2
    assert proc.stdout == "written before the deadlock\n"
    lines = proc.stderr.splitlines()
    assert lines[:3] == [
        "fatal error: all goroutines are asleep - deadlock!",
        "",
        "goroutine 1 [chan receive]:",
    ], proc.stderr
    heads = _goroutine_heads(proc.stderr)
    assert len(heads) == 2
    assert heads[1].endswith(" [chan send]:")
    assert "Traceback (most recent call last)" not in proc.stderr


# --- the examples -------------------------------------------------------------------------------


def _is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, int(n**0.5) + 1))


def test_examples_exist() -> None:
    assert (EXAMPLES / "sieve.py").is_file()
    assert (EXAMPLES / "pingpong.py").is_file()


def test_example_sieve(procs: int) -> None:
    proc = gort_cli(str(EXAMPLES / "sieve.py"), cwd=EXAMPLES, procs=procs)
    assert proc.returncode == 0, proc.stderr
    numbers = [int(n) for n in re.findall(r"\b\d+\b", proc.stdout)]
    assert 2 in numbers, proc.stdout
    primes = numbers[numbers.index(2) :]
    assert primes[:5] == [2, 3, 5, 7, 11], proc.stdout
    assert all(_is_prime(p) for p in primes), proc.stdout
    assert primes == sorted(set(primes)), "primes should come out increasing, once each"


def test_example_sieve_with_argument(procs: int) -> None:
    proc = gort_cli(str(EXAMPLES / "sieve.py"), "10", cwd=EXAMPLES, procs=procs)
    assert proc.returncode == 0, proc.stderr
    assert [int(n) for n in proc.stdout.split()] == [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]


def test_example_pingpong(procs: int) -> None:
    proc = gort_cli(str(EXAMPLES / "pingpong.py"), cwd=EXAMPLES, procs=procs)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.lower()
    assert "ping" in out, proc.stdout
    assert "pong" in out, proc.stdout
    # the ball count after the names starts at 0 and climbs by at most one per line
    hits = [int(n) for n in re.findall(r"\b(?:ping|pong) (\d+)", out)]
    assert len(hits) >= 2, proc.stdout
    assert hits[0] == 0 < hits[-1], proc.stdout
    assert all(0 <= b - a <= 1 for a, b in pairwise(hits)), proc.stdout


@pytest.mark.parametrize("name", ["sieve.py", "pingpong.py"])
def test_examples_have_main(name: str) -> None:
    source = (EXAMPLES / name).read_text()
    assert re.search(r"^def main\(", source, flags=re.MULTILINE), name


# --- rough edges found in trials (issue 6) ----------------------------------------------------


def test_no_script_is_a_usage_error(tmp_path: Path) -> None:
    proc = gort_cli(cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("usage: python -m gort")
    assert "no script given" in proc.stderr
    assert "required" not in proc.stderr


@pytest.mark.parametrize("name", ["json.py", "threading.py"])
def test_a_script_named_like_a_stdlib_module_does_not_replace_it(tmp_path: Path, name: str) -> None:
    source = """
        import json
        import threading
        import gort

        def main():
            ch = gort.chan()
            gort.go(ch.send, json.dumps({"n": threading.active_count() > 0}))
            print(ch.recv())
        """
    # Run from another directory: `python -m` itself puts the current directory
    # first on sys.path, before gort runs (Python 3.13 imports threading later).
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = gort_cli(str(tmp_path / script(tmp_path, source, name)), cwd=elsewhere)
    assert (proc.returncode, proc.stdout) == (0, '{"n": true}\n'), proc.stderr


def test_the_scripts_own_modules_still_import(tmp_path: Path) -> None:
    (tmp_path / "helper.py").write_text("VALUE = 'from helper'\n")
    source = """
        import helper

        def main():
            print(helper.VALUE)
        """
    proc = gort_cli(script(tmp_path, source), cwd=tmp_path)
    assert (proc.returncode, proc.stdout) == (0, "from helper\n"), proc.stderr


def test_async_main_gets_a_clear_error(tmp_path: Path) -> None:
    source = """
        async def main():
            pass
        """
    proc = gort_cli(script(tmp_path, source), cwd=tmp_path)
    assert proc.returncode == 2
    assert "main is an async function; gort runs plain functions" in proc.stderr
    assert "never awaited" not in proc.stderr
