"""Running gort programs in a fresh interpreter, for the tests that read what a
program prints or how it exits (the CLI, panics, schedtrace, GODEBUG)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
GO_ENV = ("GOMAXPROCS", "GODEBUG", "GOTRACEBACK", "GORT_SCHEDSEED")


def gort_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without Go's variables, with src/ importable, plus extra."""
    env = {k: v for k, v in os.environ.items() if k not in (*GO_ENV, "PYTHONSTARTUP")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH", "")) if p)
    env.update(extra or {})
    return env


def run_script(
    tmp_path: Path,
    source: str,
    env: dict[str, str] | None = None,
    cli: tuple[str, ...] = (),
    name: str = "prog.py",
    timeout: float = 60.0,
) -> subprocess.CompletedProcess[str]:
    """Write source to tmp_path/name and run `python -m gort [cli...] name` there."""
    script = tmp_path / name
    script.write_text(textwrap.dedent(source))
    return subprocess.run(
        [sys.executable, "-m", "gort", *cli, str(script)],
        capture_output=True,
        text=True,
        env=gort_env(env),
        timeout=timeout,
        cwd=tmp_path,
    )
