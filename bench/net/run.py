"""TCP echo benchmarks: gort.net against gevent, asyncio, uvloop, trio and Go.

    python bench/net/run.py [--duration 5] [--conns 100,1000] [--systems gort,gevent]
                            [--idle 10000] [--no-throughput] [--no-memory]

One load generator for every server (bench/net/loadgen.go, built here with
``go build``), pinned to core 0 with ``taskset``; each server pinned to core 1.
64-byte messages, every byte checked. Throughput: round trips per second over
``--duration`` seconds after a 1 s warm-up, per connection count. Memory: the
server's RSS growth per connection with ``--idle`` idle connections (each
echoed once, so each has its task/goroutine/greenlet parked in a read).
Prints a Markdown report: machine, load average, commit, tables, ratios.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE.parent))
from serverproc import free_port, wait_port  # noqa: E402

SERVER_CORE = "1"
LOADGEN_CORE = "0"
PY_SYSTEMS = ["gort", "gevent", "asyncio", "uvloop", "uvloop_proto", "trio"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GOMAXPROCS", "GODEBUG")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    return env


def _build(tmp: Path, name: str) -> Path:
    exe = tmp / name
    r = subprocess.run(
        ["go", "build", "-o", str(exe), str(HERE / f"{name}.go")],
        capture_output=True,
        text=True,
        env={**os.environ, "GOCACHE": str(tmp / "gocache"), "GO111MODULE": "off"},
        check=False,
    )
    if r.returncode != 0:
        raise RuntimeError(f"go build {name}: {r.stderr[-500:]}")
    return exe


def _start(system: str, port: int, goserver: Path) -> subprocess.Popen[bytes]:
    if system == "go":
        cmd = [str(goserver), str(port)]
        env = {**_env(), "GOMAXPROCS": "1"}  # one core, like the Python servers
    else:
        cmd = [sys.executable, str(HERE / "servers.py"), system, str(port)]
        env = _env()
    proc = subprocess.Popen(
        ["taskset", "-c", SERVER_CORE, *cmd],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    wait_port(port, proc)
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()
    proc.wait()
    if proc.stderr is not None:
        proc.stderr.close()


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _cpu_s(pid: int) -> float:
    """utime + stime of pid, seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def throughput(
    system: str, conns: int, duration: float, loadgen: Path, goserver: Path
) -> tuple[float, float]:
    """(round trips/s, server CPU microseconds per round trip)."""
    port = free_port()
    proc = _start(system, port, goserver)
    try:
        cpu0 = _cpu_s(proc.pid)
        r = subprocess.run(
            [
                "taskset",
                "-c",
                LOADGEN_CORE,
                str(loadgen),
                f"-addr=127.0.0.1:{port}",
                f"-conns={conns}",
                "-size=64",
                f"-duration={duration}s",
                "-warmup=1s",
            ],
            capture_output=True,
            text=True,
            timeout=duration + 120,
            check=False,
        )
        cpu = _cpu_s(proc.pid) - cpu0
        if r.returncode != 0:
            raise RuntimeError(r.stderr.strip()[-300:])
        out = r.stdout.split()
        return float(out[1]), cpu * 1e6 / max(1, int(out[3]))
    finally:
        _stop(proc)


def idle_memory(system: str, n: int, loadgen: Path, goserver: Path) -> float:
    """Server RSS growth per idle connection, in bytes."""
    port = free_port()
    proc = _start(system, port, goserver)
    try:
        warm = subprocess.run(
            [str(loadgen), f"-addr=127.0.0.1:{port}", "-conns=100", "-idle"],
            input="",
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if warm.returncode != 0:
            raise RuntimeError(warm.stderr.strip()[-300:])
        time.sleep(0.5)
        before = _rss_kb(proc.pid)
        gen = subprocess.Popen(
            [str(loadgen), f"-addr=127.0.0.1:{port}", f"-conns={n}", "-idle"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert gen.stdout is not None and gen.stdin is not None
        line = gen.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"load generator: {line!r}")
        time.sleep(1.0)
        after = _rss_kb(proc.pid)
        gen.stdin.close()
        gen.wait(30)
        return (after - before) * 1024 / n
    finally:
        _stop(proc)


def _machine() -> list[str]:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(x.split(":", 1)[1].strip() for x in f if x.startswith("model name"))
    except (OSError, StopIteration):
        pass
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    go = subprocess.run(["go", "version"], capture_output=True, text=True, check=False).stdout
    return [
        f"* machine: {cpu}, {os.cpu_count()} cores; Python {platform.python_version()}; "
        f"{go.strip()}",
        f"* date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; commit {commit}",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--conns", default="100,1000")
    ap.add_argument("--systems", default=",".join([*PY_SYSTEMS, "go"]))
    ap.add_argument("--idle", type=int, default=10_000)
    ap.add_argument("--no-throughput", action="store_true")
    ap.add_argument("--no-memory", action="store_true")
    args = ap.parse_args()
    if shutil.which("go") is None:
        sys.exit("bench/net needs Go for its load generator (apt-get install golang-go)")
    systems = args.systems.split(",")
    counts = [int(x) for x in args.conns.split(",")]
    lines = ["## TCP echo (bench/net)", "", *_machine(), ""]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        loadgen, goserver = _build(tmp, "loadgen"), _build(tmp, "echo_go")
        if not args.no_throughput:
            rates: dict[tuple[str, int], float | str] = {}
            cpus: dict[tuple[str, int], float | str] = {}
            for n in counts:
                for s in systems:
                    try:
                        rates[s, n], cpus[s, n] = throughput(s, n, args.duration, loadgen, goserver)
                    except Exception as e:  # a peer that fails is reported, not fatal
                        rates[s, n] = cpus[s, n] = f"n/a ({e})"
                    print(f"{s} {n}: {rates[s, n]} {cpus[s, n]}", file=sys.stderr)
            lines += _throughput_table(systems, counts, rates, args.duration)
            lines += _cpu_table(systems, counts, cpus)
        if not args.no_memory:
            lines += _memory_table(systems, args.idle, loadgen, goserver)
    print("\n".join(lines))


def _fmt(v: float | str) -> str:
    return f"{v:,.0f}" if isinstance(v, float) else v


def _throughput_table(
    systems: list[str], counts: list[int], rates: dict[tuple[str, int], float | str], dur: float
) -> list[str]:
    out = [
        f"Round trips/s, 64-byte messages, {dur:g} s per run after 1 s of warm-up; "
        "server on core 1, the Go load generator on core 0. Ratio: gort / other.",
        "",
        "| system | " + " | ".join(f"{n} conns | gort/x" for n in counts) + " |",
        "|---|" + "---:|---:|" * len(counts),
    ]
    for s in systems:
        cells = []
        for n in counts:
            v, g = rates.get((s, n), "-"), rates.get(("gort", n))
            ratio = f"{g / v:.2f}x" if isinstance(v, float) and isinstance(g, float) else "-"
            cells += [_fmt(v), ratio]
        out.append(f"| {s} | " + " | ".join(cells) + " |")
    return [*out, ""]


def _cpu_table(
    systems: list[str], counts: list[int], cpus: dict[tuple[str, int], float | str]
) -> list[str]:
    """CPU time per round trip: what a round trip costs the server, robust to
    a loaded machine (it is not a rate). Ratio: other / gort (above 1: gort
    spends less)."""
    out = [
        "Server CPU time (user + system) per round trip, microseconds (warm-up included). "
        "Ratio: other / gort.",
        "",
        "| system | " + " | ".join(f"{n} conns | x/gort" for n in counts) + " |",
        "|---|" + "---:|---:|" * len(counts),
    ]
    for s in systems:
        cells = []
        for n in counts:
            v, g = cpus.get((s, n), "-"), cpus.get(("gort", n))
            ratio = f"{v / g:.2f}x" if isinstance(v, float) and isinstance(g, float) else "-"
            cells += [f"{v:.2f}" if isinstance(v, float) else v, ratio]
        out.append(f"| {s} | " + " | ".join(cells) + " |")
    return [*out, ""]


def _memory_table(systems: list[str], n: int, loadgen: Path, goserver: Path) -> list[str]:
    out = [
        f"Server RSS growth per idle connection, {n:,} connections each echoed once, bytes.",
        "",
        "| system | bytes/conn | gort/x |",
        "|---|---:|---:|",
    ]
    mem: dict[str, float | str] = {}
    for s in systems:
        if s == "uvloop_proto":
            continue
        try:
            mem[s] = idle_memory(s, n, loadgen, goserver)
        except Exception as e:
            mem[s] = f"n/a ({e})"
        print(f"{s} idle: {mem[s]}", file=sys.stderr)
    for s, v in mem.items():
        g = mem.get("gort")
        ratio = f"{g / v:.2f}x" if isinstance(v, float) and isinstance(g, float) else "-"
        out.append(f"| {s} | {_fmt(v)} | {ratio} |")
    return [*out, ""]


if __name__ == "__main__":
    main()
