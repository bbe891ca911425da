"""The examples and the documentation's snippets stay runnable.

* Every ``examples/*.py`` runs through ``python -m gort`` in a fresh process,
  with one P and with two, and must exit 0 with the output that example
  promises. An example without a check here fails ``test_every_example_is_checked``.
* Every fenced ``python`` block in ``docs/*.md`` that contains ``gort.run(`` is
  a complete program: it runs in a fresh process and must exit 0 (the blocks
  assert what the prose claims). A block preceded by ``<!-- no-test -->`` is
  skipped.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
EXAMPLES = ROOT / "examples"
DOCS = ROOT / "docs"
TIMEOUT = 60  # seconds for one program; each takes about a second
GO_ENV = ("GOMAXPROCS", "GODEBUG", "GOTRACEBACK", "GORT_SCHEDSEED")
NO_TEST = "<!-- no-test -->"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in GO_ENV and k != "PYTHONSTARTUP"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH", "")) if p)
    return env


def _python(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def _gort(name: str, *args: str, procs: int = 1) -> subprocess.CompletedProcess[str]:
    return _python("-m", "gort", "--procs", str(procs), str(EXAMPLES / name), *args)


def _report(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit status {proc.returncode}\n--- stdout\n{proc.stdout}--- stderr\n{proc.stderr}"


# --- what each example must print ---------------------------------------------------------------

FIRST_PRIMES = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]


def _sieve_10(out: str) -> None:
    assert out.split() == [str(p) for p in FIRST_PRIMES]


def _sieve_default(out: str) -> None:
    primes = [int(line) for line in out.splitlines()]
    assert len(primes) == 100
    assert primes[:10] == FIRST_PRIMES
    assert primes[-1] == 541  # the 100th prime


def _pingpong_5(out: str) -> None:
    lines = out.splitlines()
    hits = [line for pair in ((f"pong {i}", f"ping {i + 1}") for i in range(5)) for line in pair]
    assert lines == [*hits, "5 round trips, ball at 5"]


def _pingpong_default(out: str) -> None:
    assert out.splitlines()[-1] == "10 round trips, ball at 10"


def _workers(out: str) -> None:
    assert out == "285\n"  # printed by main: the CLI does not print main's value


def _timeouts(out: str) -> None:
    assert out.splitlines() == [
        "fast: answer after 0.01s",
        "slow: timed out after 0.05s",
        "poll: answer after 0.03s (found by polling)",
        "beat 1",
        "beat 2",
        "beat 3",
        "heartbeat: 3 beats",
        "heartbeat: deadline passed after 0 beats",
    ]


def _blocking(out: str) -> None:
    lines = out.splitlines()
    assert len(lines) == 4, lines
    for line, call in zip(lines[:2], ("time.sleep(0.2)", "os.read(pipe)"), strict=True):
        m = re.fullmatch(re.escape(call) + r": the ticker ticked (\d+) times meanwhile", line)
        assert m, line
        # 0.2 s at one tick per 10 ms: about 20; the ticker ran, so at least a few
        assert int(m.group(1)) >= 3, line
    assert lines[2:] == [
        "read b'hello through a pipe'",
        "os.read on a closed descriptor: OSError EBADF",
    ]


def _pipeline(n: int, workers: int) -> Callable[[str], None]:
    def check(out: str) -> None:
        total = n * (n + 1) * (2 * n + 1) // 6
        assert out.splitlines() == [
            f"sum of squares of 1..{n} with {workers} workers: {total}",
            "took 5 results, then cancelled the pipeline",
        ]

    return check


def _http_api(out: str) -> None:
    assert out.splitlines() == [
        'POST /items -> 201 {"id": 1, "name": "gopher"}',
        'POST /items -> 201 {"id": 2, "name": "python"}',
        'GET /items -> 200 [{"id": 1, "name": "gopher"}, {"id": 2, "name": "python"}]',
        'GET /items/2 -> 200 {"id": 2, "name": "python"}',
        "DELETE /items/1 -> 204 ",
        "GET /items/1 -> 404 404 page not found",
        "POST /items -> 400 want a JSON object with a name",
        "PUT /items/2 -> 405 Method Not Allowed",
        "shutdown: None; serve returned: http: Server closed",
    ]


def _fetchall(out: str) -> None:
    assert out.splitlines() == [
        "fetched 5 pages, at most 3 at once, error: None",
        "fetched ['/a', '/c'], error: context deadline exceeded",
    ]


def _echo_server(clients: int, rounds: int) -> Callable[[str], None]:
    def check(out: str) -> None:
        assert out == f"echoed {clients * rounds} messages over {clients} connections\n"

    return check


def _chat(out: str) -> None:
    said = "alice: hello from alice; bob: hello from bob; carol: hello from carol"
    assert out.splitlines() == [
        f"alice heard 3 joins and: {said}",
        f"bob heard 2 joins and: {said}",
        f"carol heard 1 joins and: {said}",
    ]


def _fetch_many(n: int) -> Callable[[str], None]:
    def check(out: str) -> None:
        assert out == f"{n} requests: {n - n // 100} ok, {n // 100} timed out\n"

    return check


@dataclass(frozen=True)
class Case:
    example: str
    args: tuple[str, ...]
    check: Callable[[str], None]

    @property
    def id(self) -> str:
        return " ".join((self.example, *self.args))


CASES = [
    Case("sieve.py", ("10",), _sieve_10),
    Case("sieve.py", (), _sieve_default),
    Case("pingpong.py", ("5",), _pingpong_5),
    Case("pingpong.py", (), _pingpong_default),
    Case("workers.py", (), _workers),
    Case("timeouts.py", (), _timeouts),
    Case("blocking.py", (), _blocking),
    Case("pipeline.py", (), _pipeline(1000, 4)),
    Case("pipeline.py", ("50", "3"), _pipeline(50, 3)),
    Case("http_api.py", (), _http_api),
    Case("fetchall.py", (), _fetchall),
    Case("echo_server.py", (), _echo_server(100, 10)),
    Case("echo_server.py", ("20", "3"), _echo_server(20, 3)),
    Case("chat.py", (), _chat),
    Case("fetch_many.py", (), _fetch_many(1000)),
]


def test_every_example_is_checked() -> None:
    on_disk = {p.name for p in EXAMPLES.glob("*.py")}
    checked = {c.example for c in CASES}
    assert on_disk == checked, "add a Case for every example (and only for those)"


@pytest.mark.timeout(2 * TIMEOUT)
@pytest.mark.parametrize("procs", [1, 2], ids=["P1", "P2"])
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_example_under_gort_cli(case: Case, procs: int) -> None:
    proc = _gort(case.example, *case.args, procs=procs)
    assert proc.returncode == 0, _report(proc)
    for marker in ("panic:", "fatal error:", "Traceback"):
        assert marker not in proc.stderr, _report(proc)
    case.check(proc.stdout)


@pytest.mark.timeout(2 * TIMEOUT)
def test_blocking_example_never_holds_a_processor() -> None:
    # The point of blocking.py: with gort.syscall, no P is held by a blocking call,
    # so the blocking detector stays quiet.
    proc = _gort("blocking.py")
    assert proc.returncode == 0, _report(proc)
    assert "without yielding" not in proc.stderr, _report(proc)


ECHO_EMFILE = """
import os, resource, socket, sys
sys.path.insert(0, sys.argv[1])
import echo_server
import gort

def main():
    ln = gort.net.listen("tcp", "127.0.0.1:0")
    clients = [socket.create_connection(("127.0.0.1", ln.addr.port)) for _ in range(20)]
    used = len(os.listdir("/proc/self/fd")) - 1
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (used + 4, hard))  # room for 4 accepted conns
    gort.go(echo_server.serve, ln)
    done = gort.chan()

    def talk(c):
        c.sendall(b"ping")
        got = gort.syscall(c.recv, 4)  # blocks a helper thread, not the P
        gort.sleep(0.03)  # hold the server's conn: its next accepts fail for a while
        done.send(got)
        c.close()  # the server's conn ends: its descriptor is free for the next accept

    for c in clients:
        gort.go(talk, c)
    print(sum(done.recv() == b"ping" for _ in clients))
    ln.close()

gort.run(main)
"""


@pytest.mark.timeout(2 * TIMEOUT)
def test_echo_server_backs_off_when_out_of_descriptors() -> None:
    proc = _python("-c", ECHO_EMFILE, str(EXAMPLES))
    assert proc.returncode == 0, _report(proc)
    assert proc.stdout == "20\n", _report(proc)
    delays = re.findall(r"accept error: Too many open files; retrying in (\d+)ms", proc.stderr)
    assert delays[:2] == ["5", "10"], _report(proc)  # 5 ms, doubling


@pytest.mark.timeout(2 * TIMEOUT)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_example_run_directly_prints_the_same(case: Case) -> None:
    # Each example also ends with `if __name__ == "__main__": gort.run(main)`.
    proc = _python(str(EXAMPLES / case.example), *case.args)
    assert proc.returncode == 0, _report(proc)
    case.check(proc.stdout)


# --- the documentation's snippets -----------------------------------------------------------


@dataclass(frozen=True)
class Snippet:
    doc: str
    line: int  # of the opening fence, 1-based
    code: str

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"


def _python_blocks(path: Path) -> Iterator[tuple[int, str, str]]:
    """(line of the opening fence, the code, the last non-blank line before it)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    before = ""
    i = 0
    while i < len(lines):
        fence = lines[i].strip()
        if fence.startswith("```"):
            end = i + 1
            while end < len(lines) and lines[end].strip() != "```":
                end += 1
            if fence == "```python":
                yield i + 1, "\n".join(lines[i + 1 : end]) + "\n", before
            before = "```"
            i = end + 1
            continue
        if fence:
            before = fence
        i += 1


def _snippets() -> list[Snippet]:
    found = []
    for path in sorted(DOCS.glob("*.md")):
        for line, code, before in _python_blocks(path):
            if "gort.run(" in code and before != NO_TEST:
                found.append(Snippet(path.name, line, code))
    return found


SNIPPETS = _snippets()


def test_docs_have_runnable_snippets() -> None:
    docs = {s.doc for s in SNIPPETS}
    assert {"api.md", "design.md", "debugging.md"} <= docs, docs
    assert sum(s.doc == "api.md" for s in SNIPPETS) >= 15  # one per section


@pytest.mark.timeout(2 * TIMEOUT)
@pytest.mark.parametrize("snippet", SNIPPETS, ids=[s.id for s in SNIPPETS])
def test_doc_snippet_runs(snippet: Snippet, tmp_path: Path) -> None:
    script = tmp_path / f"{Path(snippet.doc).stem}_{snippet.line}.py"
    script.write_text(snippet.code, encoding="utf-8")
    proc = _python(str(script), cwd=tmp_path)
    assert proc.returncode == 0, f"docs/{snippet.id}\n" + _report(proc)


def test_snippet_extraction_honours_no_test(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(
        "# t\n\n```python\ngort.run(a)\n```\n\n"
        "<!-- no-test -->\n\n```python\ngort.run(b)\n```\n\n"
        "```text\ngort.run(c)\n```\n\n```python\nprint('no run')\n```\n",
        encoding="utf-8",
    )
    blocks = list(_python_blocks(doc))
    assert [(code, before) for _, code, before in blocks] == [
        ("gort.run(a)\n", "# t"),
        ("gort.run(b)\n", NO_TEST),
        ("print('no run')\n", "```"),
    ]
    assert [line for line, _, _ in blocks] == [3, 9, 17]
