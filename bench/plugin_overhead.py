"""What the pytest plugin costs per test (target: under 5 ms).

The same file of N trivial tests is run by pytest in a fresh interpreter,
plain and with ``gort_mode = true`` (each test then runs as goroutine 1 of
its own gort.run, with the leak checks after it); runs are interleaved and
the medians compared: (gort - plain) / N is the plugin's cost per test.

    PYTHONPATH=src python bench/plugin_overhead.py [--tests 500] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

TEST = """
def test_{i}():
    assert {i} + 1 == {j}
"""


def _one(directory: Path, gort_mode: bool) -> float:
    (directory / "pytest.ini").write_text(
        f"[pytest]\ngort_mode = {'true' if gort_mode else 'false'}\n"
    )
    env = dict(os.environ, PYTHONPATH=str(SRC))
    eps = metadata.entry_points(group="pytest11")
    plugin = [] if any(ep.value == "gort_pytest" for ep in eps) else ["-p", "gort_pytest"]
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *plugin, "-p", "no:cacheprovider"],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    elapsed = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"pytest failed:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tests", type=int, default=500)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "test_many.py").write_text("".join(TEST.format(i=i, j=i + 1) for i in range(a.tests)))
        plain: list[float] = []
        gort: list[float] = []
        for _ in range(a.runs):
            plain.append(_one(d, False))
            gort.append(_one(d, True))
    p, g = statistics.median(plain), statistics.median(gort)
    per_test = (g - p) / a.tests * 1e3
    print(f"tests: {a.tests}, runs: {a.runs} (median), load average: {os.getloadavg()[0]:.2f}")
    print(f"plain pytest: {p:.2f} s ({p / a.tests * 1e3:.2f} ms/test incl. start-up)")
    print(f"gort_mode:    {g:.2f} s ({g / a.tests * 1e3:.2f} ms/test incl. start-up)")
    print(f"plugin overhead: {per_test:.2f} ms per test")


if __name__ == "__main__":
    main()
