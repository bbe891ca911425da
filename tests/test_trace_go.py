"""gort's traces, read by the real Go toolchain (`go tool trace`).

Every trace made here must parse with ``go tool trace -d`` (Go's parser
rejects the whole file for one illegal state transition), and the
scheduler-latency and synchronization profiles that ``-pprof`` builds
from it must hold samples: the goroutine analysis is not empty. The traces
are made once per module (each example program through the CLI, plus the
scenarios of test_trace.py) and each `go tool` run takes milliseconds.

`.ci/run` installs Debian's golang-go, so these run in CI; they skip only
on a machine without Go.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import gort
import gort.trace
from gortproc import gort_env
from test_trace import _everything, traced

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
GO = shutil.which("go") or next(
    (str(p) for p in sorted(Path("/usr/lib").glob("go-1.*/bin/go"), reverse=True)), None
)

pytestmark = pytest.mark.skipif(GO is None, reason="the Go toolchain is not installed")


def go_trace(*args: str) -> subprocess.CompletedProcess[bytes]:
    assert GO is not None
    return subprocess.run(
        [GO, "tool", "trace", *args], capture_output=True, timeout=60, check=False
    )


def pprof_samples(profile: bytes) -> int:
    """The number of samples in a gzipped pprof profile (profile.proto field 2)."""
    data = gzip.decompress(profile)
    pos = n = 0

    def varint() -> int:
        nonlocal pos
        v = shift = 0
        while True:
            b = data[pos]
            pos += 1
            v |= (b & 0x7F) << shift
            if b < 0x80:
                return v
            shift += 7

    while pos < len(data):
        key = varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            varint()
        elif wire == 2:
            length = varint()  # before reading pos: varint() moves it
            pos += length
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"bad wire type {wire}")
        n += field == 2
    return n


def _annotated() -> None:
    ctx, task = gort.trace.new_task(None, "make coffee")
    c = gort.chan()

    def grinder() -> None:
        with gort.trace.region(ctx, "grind"):
            gort.trace.log(ctx, "beans", "18 grams")
            c.send("ground")

    gort.go(grinder)
    with gort.trace.region(ctx, "wait for grinder"):
        assert c.recv() == "ground"
    task.end()


def _cli_trace(script: Path, path: Path) -> subprocess.CompletedProcess[str]:
    """`python -m gort --trace path script`."""
    return subprocess.run(
        [sys.executable, "-m", "gort", "--trace", str(path), str(script)],
        capture_output=True,
        text=True,
        env=gort_env(),
        timeout=60,
        cwd=path.parent,
        check=False,
    )


@pytest.fixture(scope="module")
def traces(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """name -> trace file: the examples (CLI) and the scenarios (in process)."""
    d = tmp_path_factory.mktemp("traces")
    out: dict[str, Path] = {}
    for ex in EXAMPLES:
        path = d / f"{ex.stem}.trace"
        proc = _cli_trace(ex, path)
        assert proc.returncode == 0, proc.stderr
        out[f"example {ex.stem}"] = path
    for name, fn, procs in (
        ("everything P1", _everything, 1),
        ("everything P2", _everything, 2),
        ("annotations", _annotated, 1),
    ):
        path = d / f"{name.replace(' ', '_')}.trace"
        path.write_bytes(traced(fn, procs))
        out[name] = path
    for name, end in (("panic", "raise ValueError('boom')"), ("deadlock", "c.recv()")):
        script = d / f"{name}.py"
        script.write_text(
            "import gort\n"
            "def child(c):\n    c.send(1)\n"
            "def main():\n    c = gort.chan()\n"
            "    for _ in range(3):\n        gort.go(child, c)\n"
            "    for _ in range(3):\n        c.recv()\n"
            f"    {end}\n"
        )
        path = d / f"{name}.trace"
        proc = _cli_trace(script, path)
        assert proc.returncode == 2, proc.stderr
        out[name] = path
    return out


NAMES = [f"example {ex.stem}" for ex in EXAMPLES] + [
    "everything P1",
    "everything P2",
    "annotations",
    "panic",
    "deadlock",
]


@pytest.mark.parametrize("name", NAMES)
def test_go_parses_and_profiles(traces: dict[str, Path], name: str) -> None:
    path = str(traces[name])
    parsed = go_trace("-d", path)
    assert parsed.returncode == 0, parsed.stderr.decode()
    text = parsed.stdout.decode()
    assert " GoStart " in text and " GoCreate " in text
    sched = go_trace("-pprof=sched", path)
    assert sched.returncode == 0, sched.stderr.decode()
    assert pprof_samples(sched.stdout) > 0, "empty scheduler latency profile"
    sync = go_trace("-pprof=sync", path)
    assert sync.returncode == 0, sync.stderr.decode()
    if " GoBlockSend " in text or " GoBlockRecv " in text:
        assert pprof_samples(sync.stdout) > 0, "empty synchronization profile"


def test_go_sees_syscalls(traces: dict[str, Path]) -> None:
    prof = go_trace("-pprof=syscall", str(traces["everything P1"]))
    assert prof.returncode == 0, prof.stderr.decode()
    assert pprof_samples(prof.stdout) > 0


def test_go_sees_user_tasks_and_regions(traces: dict[str, Path]) -> None:
    text = go_trace("-d", str(traces["annotations"])).stdout.decode()
    assert "UserTaskCreate" in text and "name=make coffee" in text
    assert "name=grind" in text and "name=wait for grinder" in text
    assert "UserLog" in text and "category=beans" in text and "message=18 grams" in text
    assert "UserTaskEnd" in text


def _serve_ui(path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`go tool trace -http` on path: the server and its base URL."""
    assert GO is not None
    env = {**gort_env(), "BROWSER": "true"}  # no browser to open; `true URL` succeeds
    proc = subprocess.Popen(
        [GO, "tool", "trace", "-http=127.0.0.1:0", str(path)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env=env,
    )
    assert proc.stderr is not None
    fd = proc.stderr.fileno()
    said = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], deadline - time.monotonic())
        chunk = os.read(fd, 4096) if ready else b""
        said += chunk
        found = re.search(rb"http://127\.0\.0\.1:\d+", said)
        if found:
            return proc, found.group(0).decode()
        if not chunk:
            break
    proc.kill()
    proc.wait(timeout=30)
    raise AssertionError(f"go tool trace -http did not start listening: {said.decode()}")


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as resp:
        assert resp.status == 200, url
        return resp.read().decode("utf-8", "replace")


@pytest.mark.parametrize("name", NAMES)
def test_go_web_ui_opens(traces: dict[str, Path], name: str) -> None:
    """The viewer's start-up splits the trace into timeline slices, which
    needs every GoStart paired with its end (the parser alone does not)."""
    proc, base = _serve_ui(traces[name])
    try:
        assert "/goroutine?id=" in _get(base + "/goroutines")
        assert json.loads(_get(base + "/jsontrace"))["traceEvents"]
    finally:
        proc.kill()
        proc.wait(timeout=30)
        assert proc.stderr is not None
        proc.stderr.close()


def test_go_web_ui_serves_every_view(traces: dict[str, Path]) -> None:
    """What a user clicks in `go tool trace`'s web UI: the goroutine analysis
    grouped by gort function, one group's table, the user tasks and regions,
    the blocking and scheduler-latency profiles, and the timeline's JSON."""
    proc, base = _serve_ui(traces["annotations"])
    try:
        groups = _get(base + "/goroutines")
        gid = re.search(r'href="(/goroutine\?id=\d+)">[^<]*grinder', groups)
        assert gid is not None, groups
        table = _get(base + gid.group(1))
        assert "Execution Time" in table and "Sync Block Time" in table
        assert "make coffee" in _get(base + "/usertasks")
        regions = _get(base + "/userregions")
        assert "grind" in regions and "wait for grinder" in regions
        for profile in ("io", "block", "syscall", "sched"):
            _get(f"{base}/{profile}?raw=1")  # Go builds each profile, or answers 500
        timeline = json.loads(_get(base + "/jsontrace"))
        names = {e.get("name", "") for e in timeline["traceEvents"]}
        assert any("grinder" in n for n in names), sorted(names)[:20]
    finally:
        proc.kill()
        proc.wait(timeout=30)
        assert proc.stderr is not None
        proc.stderr.close()
