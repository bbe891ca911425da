"""HTTP benchmarks: gort.http against Python's servers and Go's net/http, with wrk.

    python bench/http/run.py [--duration 5] [--only single,workers,flask] [--out FILE]

Every server runs pinned to core 0 (taskset) and wrk (one thread) to core 1,
except the two-worker group, where the servers get both cores (and share the
second with wrk: on a 2-core machine that is the only way to run two
workers). Each (server, path, connections) pair is one short wrk run; all
pairs run in one sitting, so the ratios compare like with like. Prints a
Markdown report (machine, load average, commit, tables).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE.parent))
from serverproc import free_port, wait_port  # noqa: E402

PY = sys.executable
SERVER_CORES = "0"
WRK_CORES = "1"


SRC = [str(ROOT / "src")]  # --src overrides: the gort tree the servers import


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([SRC[0], str(HERE), env.get("PYTHONPATH", "")])
    for k in ("GOMAXPROCS", "GODEBUG"):
        env.pop(k, None)
    return env


def _go_binary(tmp: Path) -> list[str] | None:
    if shutil.which("go") is None:
        return None
    exe = tmp / "go_server"
    r = subprocess.run(
        ["go", "build", "-o", str(exe), str(HERE / "go_server.go")],
        capture_output=True,
        env={**os.environ, "GOCACHE": str(tmp / "gocache"), "GO111MODULE": "off"},
        check=False,
    )
    if r.returncode != 0:
        print(f"go build failed: {r.stderr.decode()[-300:]}", file=sys.stderr)
        return None
    js = tmp / "payload.json"
    sys.path.insert(0, str(HERE))
    from payload import JSON_BODY

    js.write_bytes(JSON_BODY)
    return [str(exe), "{port}", str(js)]


def servers(tmp: Path) -> dict[str, list[str]]:
    cli = [PY, "-m", "gort.http", "--bind", "127.0.0.1:{port}"]
    s = {
        "gort.http": [*cli, "gort_server:handler"],
        "Sanic (1 worker)": [PY, str(HERE / "sanic_app.py"), "{port}"],
        "Tornado": [PY, str(HERE / "tornado_app.py"), "{port}"],
        "gevent.pywsgi": [PY, str(HERE / "gevent_app.py"), "{port}"],
        "uvicorn (httptools, uvloop)": [
            *[PY, "-m", "uvicorn", "uvicorn_app:app", "--port", "{port}", "--loop", "uvloop"],
            *["--http", "httptools", "--log-level", "warning", "--no-access-log"],
            *["--backlog", "4096"],
        ],
        "gort.http --workers 2": [*cli, "--workers", "2", "gort_server:handler"],
        "gunicorn -k gevent -w 2": [
            *[PY, "-m", "gunicorn", "-k", "gevent", "-w", "2", "-b", "127.0.0.1:{port}"],
            *["--backlog", "4096", "--worker-connections", "2000", "gevent_app:app"],
        ],
        "uvicorn --workers 2": [
            *[PY, "-m", "uvicorn", "uvicorn_app:app", "--port", "{port}", "--loop", "uvloop"],
            *["--http", "httptools", "--log-level", "warning", "--no-access-log"],
            *["--workers", "2", "--backlog", "4096"],
        ],
        "gort.http + wsgi(Flask)": [*cli, "flask_app:app"],
        "gunicorn -k gevent (Flask)": [
            *[PY, "-m", "gunicorn", "-k", "gevent", "-w", "1", "-b", "127.0.0.1:{port}"],
            *["--backlog", "4096", "--worker-connections", "2000", "flask_app:app"],
        ],
    }
    go = _go_binary(tmp)
    if go is not None:
        s["Go net/http"] = go
    return s


def wrk(port: int, path: str, conns: int, duration: float, cores: str) -> float:
    r = subprocess.run(
        [
            *["taskset", "-c", cores, "wrk", "-t1", f"-c{conns}", f"-d{duration:g}s"],
            f"http://127.0.0.1:{port}{path}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    m = re.search(r"Requests/sec:\s+([\d.]+)", r.stdout)
    if not m:
        raise RuntimeError(f"wrk: {r.stdout[-300:]} {r.stderr[-300:]}")
    errs = re.search(r"Non-2xx or 3xx responses: (\d+)", r.stdout)
    if errs:
        raise RuntimeError(f"wrk saw {errs.group(1)} error responses")
    return float(m.group(1))


def measure(
    name: str, argv: list[str], runs: list[tuple[str, int]], duration: float, cores: str
) -> dict[tuple[str, int], float | str]:
    port = free_port()
    cmd = ["taskset", "-c", cores, *[a.replace("{port}", str(port)) for a in argv]]
    proc = subprocess.Popen(
        cmd, cwd=HERE, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    out: dict[tuple[str, int], float | str] = {}
    try:
        wait_port(port, proc)
        time.sleep(0.5)  # let every worker of a multi-process server come up
        wrk(port, runs[0][0], 50, 1, WRK_CORES)  # warm-up
        for path, conns in runs:
            try:
                out[(path, conns)] = wrk(port, path, conns, duration, WRK_CORES)
            except RuntimeError as e:
                out[(path, conns)] = f"n/a ({e})"
            print(f"  {name} {path} c={conns}: {out[(path, conns)]}", file=sys.stderr)
    except RuntimeError as e:
        for r in runs:
            out[r] = f"n/a ({e})"
        print(f"  {name}: {e}", file=sys.stderr)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return out


def _fmt(v: float | str) -> str:
    return f"{v:,.0f}" if isinstance(v, float) else v


def _machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    wrk_v = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split(" [")[0]
    return (
        f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}; {wrk_v.strip()}; "
        f"commit {commit}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"load average before {os.getloadavg()[0]:.2f}"
    )


def table(
    title: str,
    results: dict[str, dict[tuple[str, int], float | str]],
    runs: list[tuple[str, int]],
    ref: str,
) -> str:
    head = " | ".join(f"{p} c={c}" for p, c in runs)
    lines = [f"### {title}", "", f"| server | {head} |", "|---" * (len(runs) + 1) + "|"]
    for name, res in results.items():
        cells = []
        for r in runs:
            v = res.get(r, "n/a")
            base = results[ref].get(r)
            if isinstance(v, float) and isinstance(base, float) and name != ref:
                cells.append(f"{_fmt(v)} ({v / base:.2f}x gort)")
            else:
                cells.append(_fmt(v))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--only", default="single,workers,flask")
    ap.add_argument("--out", default=None)
    ap.add_argument("--src", default=SRC[0])
    opts = ap.parse_args()
    SRC[0] = opts.src
    groups = set(opts.only.split(","))
    report = [f"Machine: {_machine()}. wrk runs of {opts.duration:g} s each (short, to fit the", ""]
    report[0] += " session's time budget), requests/s; ratios against gort.http in the same table."
    with tempfile.TemporaryDirectory() as tmpd:
        srv = servers(Path(tmpd))
        if "single" in groups:
            runs = [("/", 100), ("/", 1000), ("/json", 100), ("/json", 1000)]
            names = [
                "gort.http",
                "uvicorn (httptools, uvloop)",
                "Sanic (1 worker)",
                "Tornado",
                "gevent.pywsgi",
                "Go net/http",
            ]
            res = {
                n: measure(n, srv[n], runs, opts.duration, SERVER_CORES) for n in names if n in srv
            }
            report.append(
                table("One process, server on core 0, wrk on core 1", res, runs, "gort.http")
            )
        if "workers" in groups:
            runs = [("/", 100), ("/", 1000)]
            res = {
                "gort.http": measure("gort.http", srv["gort.http"], runs, opts.duration, "0,1"),
            }
            for n in ("gort.http --workers 2", "gunicorn -k gevent -w 2", "uvicorn --workers 2"):
                res[n] = measure(n, srv[n], runs, opts.duration, "0,1")
            report.append(
                table(
                    "Two worker processes, servers on cores 0-1 (shared with wrk on core 1)",
                    res,
                    runs,
                    "gort.http",
                )
            )
        if "flask" in groups:
            runs = [("/", 100), ("/", 1000)]
            names = ["gort.http + wsgi(Flask)", "gunicorn -k gevent (Flask)"]
            res = {n: measure(n, srv[n], runs, opts.duration, SERVER_CORES) for n in names}
            report.append(
                table("Flask hello, one process on core 0", res, runs, "gort.http + wsgi(Flask)")
            )
    report.append(f"Load average after: {os.getloadavg()[0]:.2f}.\n")
    text = "\n".join(report)
    print(text)
    if opts.out:
        Path(opts.out).write_text(text)


if __name__ == "__main__":
    main()
