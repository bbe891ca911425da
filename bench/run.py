"""Run every (workload, system) pair in a fresh interpreter and print a Markdown report.

    python bench/run.py [--quick] [--only spawn,pipe] [--systems gort,uvloop] [--runs 3]
                        [--procs N] [--timeout S] [--json results.json]

Runs are interleaved (run 1 of every pair, then run 2, ...) and the median is reported. A
pair that fails, times out or is not installed shows `n/a` with the error in a footnote;
it is not retried in later runs. Progress goes to stderr, the report to stdout.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from spec import FLOOR, PEERS, SYSTEMS, WORKLOADS, Workload

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
CHILD = BENCH_DIR / "child.py"
EXIT_HUNG = 3  # child.py's status when the interpreter would not exit after reporting
PACKAGES = ("gort", "greenlet", "gevent", "uvloop", "trio")
COLUMN_TITLES = {"greenlet": "greenlet floor", "gort_base": "gort baseline"}


@dataclass
class Pair:
    """One (workload, system) cell: its size and what its runs gave."""

    workload: Workload
    system: str
    n: int
    warmup: int
    seconds: list[float] = field(default_factory=list)
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)

    def value(self) -> float | None:
        """Median in the row's unit (ns/op or seconds), or None when it failed."""
        if self.error is not None or not self.seconds:
            return None
        median = statistics.median(self.seconds)
        return median * 1e9 / self.n if self.workload.unit == "ns" else median


# ---------------------------------------------------------------- command line


def _csv(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 run, smaller sizes")
    parser.add_argument("--only", type=_csv, default=list(WORKLOADS), help="workloads, a,b")
    parser.add_argument("--systems", type=_csv, default=list(SYSTEMS), help="systems, a,b")
    parser.add_argument("--runs", type=int, default=None, help="runs per pair (3; 1 if quick)")
    parser.add_argument("--procs", type=int, default=None, help="GOMAXPROCS for gort")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per child")
    parser.add_argument("--json", type=Path, default=None, help="also write raw records here")
    args = parser.parse_args(argv)
    for name in args.only:
        if name not in WORKLOADS:
            parser.error(f"unknown workload {name!r}; choose from {', '.join(WORKLOADS)}")
    for name in args.systems:
        if name not in SYSTEMS:
            parser.error(f"unknown system {name!r}; choose from {', '.join(SYSTEMS)}")
    if args.runs is None:
        args.runs = 1 if args.quick else 3
    return args


def plan(args: argparse.Namespace) -> list[Pair]:
    pairs = []
    for name in args.only:
        workload = WORKLOADS[name]
        for system in args.systems:
            if system in workload.sizes:
                n = workload.size(system, args.quick)
                warmup = workload.warmup_size(system, args.quick)
                pairs.append(Pair(workload, system, n, warmup))
    return pairs


# ---------------------------------------------------------------- running children


def _child_command(pair: Pair, procs: int | None) -> list[str]:
    command = [sys.executable, str(CHILD), pair.system, pair.workload.name]
    command += [str(pair.n), str(pair.warmup)]
    if pair.system.startswith("gort") and procs is not None:
        command += ["--procs", str(procs)]
    return command


def _last_record(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            try:
                record: dict[str, Any] = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "system" in record:
                return record
    return None


def _tail(text: str, lines: int = 3) -> str:
    kept = [line.strip() for line in text.strip().splitlines()[-lines:]]
    return " | ".join(kept) or "(no output)"


def run_once(pair: Pair, procs: int | None, timeout: float) -> None:
    """Run one child for the pair and fold its outcome into the pair."""
    command = _child_command(pair, procs)
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, cwd=REPO_DIR
        )
    except subprocess.TimeoutExpired:
        pair.error = f"timed out after {timeout:.0f} s (hang?)"
        return
    record = _last_record(done.stdout)
    if record is None:
        pair.error = f"exit status {done.returncode}, no result: {_tail(done.stderr)}"
        return
    record["stderr_tail"] = _tail(done.stderr, 12)
    pair.records.append(record)
    if "error" in record:
        pair.error = record["error"]
        return
    pair.seconds.append(float(record["seconds"]))
    if done.returncode == EXIT_HUNG:
        pair.notes.append("the process did not exit within 10 s after reporting")
    elif done.returncode != 0:
        pair.notes.append(f"exit status {done.returncode} after reporting")


def _progress(pair: Pair, run: int) -> str:
    head = f"[run {run}] {pair.workload.name:<9} {pair.system:<9} n={pair.n:<9,}"
    if pair.error is not None:
        return f"{head} FAILED: {pair.error}"
    last = pair.seconds[-1]
    per_op = f"  {last * 1e9 / pair.n:,.0f} ns/op" if pair.workload.unit == "ns" else ""
    return f"{head} {last:.3f} s{per_op}"


def run_all(pairs: list[Pair], runs: int, procs: int | None, timeout: float) -> None:
    for run in range(1, runs + 1):
        for pair in pairs:
            if pair.error is not None:
                continue
            run_once(pair, procs, timeout)
            if pair.error is not None and pair.seconds:
                earlier = ", ".join(f"{s:.3f} s" for s in pair.seconds)
                pair.error = f"failed in run {run} of {runs} (earlier: {earlier}): {pair.error}"
            print(_progress(pair, run), file=sys.stderr, flush=True)


# ---------------------------------------------------------------- machine info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git_commit() -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(REPO_DIR), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    if done.returncode != 0:
        return "no commit yet"
    status = subprocess.run(
        ["git", "-C", str(REPO_DIR), "status", "--porcelain", "--", "src"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    dirty = " (src/ has uncommitted changes)" if status.stdout.strip() else ""
    return done.stdout.strip() + dirty


def _seen(pairs: list[Pair], key: str) -> str:
    """The distinct values a key took in the children's records."""
    values = {str(r[key]) for p in pairs for r in p.records if key in r}
    return ", ".join(sorted(values)) or "unknown"


def _gort_procs(pairs: list[Pair], asked: int | None) -> str:
    shown = _seen(pairs, "gomaxprocs")
    return f"{shown} (--procs {asked})" if asked is not None else f"{shown} (runtime default)"


def load_average() -> str:
    """1-minute load average: other work on the machine skews every number."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "unknown"


def machine_info(pairs: list[Pair], args: argparse.Namespace, before: dict[str, str]) -> list[str]:
    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    versions = ", ".join(f"{p} {_version(p)}" for p in PACKAGES)
    now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    return [
        f"- date: {now}",
        f"- CPU: {_cpu_model()}, {cores} cores ({usable} usable)",
        f"- Python: {platform.python_implementation()} {platform.python_version()}"
        f" on {platform.platform()}",
        f"- packages: {versions}",
        f"- gort GOMAXPROCS: {_gort_procs(pairs, args.procs)}; repo commit {before['commit']}",
        f"- gort imported from: {_seen(pairs, 'gort_path')}",
        f"- runs per pair: {args.runs} (median){'; quick sizes' if args.quick else ''}",
        f"- load average (1 min): {before['load']} before, {load_average()} after",
        "- command: `python " + " ".join(["bench/run.py", *sys.argv[1:]]) + "`",
    ]


# ---------------------------------------------------------------- the table


def _fmt(value: float, unit: str) -> str:
    return f"{value:,.0f}" if unit == "ns" else f"{value:.2f}"


def _ratio(numerator: float | None, denominator: float | None) -> str:
    if numerator is None or denominator is None or denominator == 0:
        return "-"
    return f"{numerator / denominator:.2f}x"


class Footnotes:
    """Numbered footnotes, one per distinct text."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def mark(self, text: str) -> str:
        if text not in self.texts:
            self.texts.append(text)
        return f"[{self.texts.index(text) + 1}]"

    def lines(self) -> list[str]:
        return [f"[{i}] {text}" for i, text in enumerate(self.texts, 1)]


def _cell(pair: Pair | None, headline_n: int, notes: Footnotes) -> str:
    if pair is None:
        return "-"
    if pair.error is not None:
        return "n/a " + notes.mark(f"{pair.system} {pair.workload.name}: {pair.error}")
    value = pair.value()
    assert value is not None
    text = _fmt(value, pair.workload.unit)
    if pair.n != headline_n:
        text += " " + notes.mark(f"{pair.system} {pair.workload.name}: N = {pair.n:,}")
    for note in pair.notes:
        text += " " + notes.mark(f"{pair.system} {pair.workload.name}: {note}")
    return text


def _best_peer(row: dict[str, Pair], headline_n: int) -> tuple[str, float] | None:
    """Fastest peer; for seconds rows only peers that ran the headline size count."""
    best: tuple[str, float] | None = None
    for system in PEERS:
        pair = row.get(system)
        if pair is None or (pair.workload.unit == "s" and pair.n != headline_n):
            continue
        value = pair.value()
        if value is None:
            continue
        if best is None or value < best[1]:
            best = (system, value)
    return best


def _headline_n(row: dict[str, Pair]) -> int:
    for system in ("gort", *PEERS, FLOOR):
        if system in row:
            return row[system].n
    return next(iter(row.values())).n


def render_table(pairs: list[Pair], systems: list[str]) -> list[str]:
    notes = Footnotes()
    columns = [s for s in SYSTEMS if s in systems]
    titles = [COLUMN_TITLES.get(s, s) for s in columns]
    header = ["workload", "N", "unit", *titles, "best peer"]
    header += ["gort vs best peer", "gort vs greenlet floor"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    rows: dict[str, dict[str, Pair]] = {}
    for pair in pairs:
        rows.setdefault(pair.workload.name, {})[pair.system] = pair
    for name, row in rows.items():
        workload = WORKLOADS[name]
        headline = _headline_n(row)
        cells = [name, f"{headline:,}", workload.unit_label]
        cells += [_cell(row.get(s), headline, notes) for s in columns]
        best = _best_peer(row, headline)
        cells.append(f"{_fmt(best[1], workload.unit)} ({best[0]})" if best else "-")
        gort = row["gort"].value() if "gort" in row else None
        floor = row[FLOOR].value() if FLOOR in row else None
        cells += [_ratio(best[1] if best else None, gort), _ratio(floor, gort)]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "Ratios are other time / gort time: above 1.00x gort is faster. "
        f"Best peer is the fastest of {', '.join(PEERS)}."
    )
    if notes.texts:
        lines += ["", *notes.lines()]
    return lines


# ---------------------------------------------------------------- main


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    pairs = plan(args)
    before = {"load": load_average(), "commit": _git_commit()}  # as the run starts
    run_all(pairs, args.runs, args.procs, args.timeout)
    report = ["## Machine", "", *machine_info(pairs, args, before), "", "## Results", ""]
    report += render_table(pairs, args.systems)
    print("\n".join(report))
    if args.json is not None:
        raw = [
            {
                "workload": p.workload.name,
                "system": p.system,
                "n": p.n,
                "value": p.value(),
                "error": p.error,
                "notes": p.notes,
                "records": p.records,
            }
            for p in pairs
        ]
        args.json.write_text(json.dumps(raw, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
