"""Run one (workload, system) pair in this fresh interpreter and print one JSON line.

    python bench/child.py SYSTEM WORKLOAD N WARMUP [--procs P]

The line holds either the timing or the error. The result is validated against the expected
value, so a broken system cannot post a fast time. Exit status 0 on success, 1 otherwise, and
EXIT_HUNG when the interpreter did not exit within EXIT_GRACE seconds of reporting (a runtime
that leaves non-daemon threads behind).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import threading
import traceback
from types import ModuleType
from typing import Any

from spec import SLEEP_SECONDS, WORKLOADS

EXIT_HUNG = 3
EXIT_GRACE = 10.0


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("system")
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("n", type=int)
    parser.add_argument("warmup", type=int)
    parser.add_argument("--procs", type=int, default=None)
    return parser.parse_args(argv)


def _check(workload: str, n: int, value: int, seconds: float) -> None:
    expected = WORKLOADS[workload].expected(n)
    if value != expected:
        raise AssertionError(f"validation failed: got {value!r}, expected {expected!r}")
    if workload == "sleepers" and seconds < SLEEP_SECONDS:
        raise AssertionError(f"validation failed: {n} sleeps of 10 ms ended in {seconds:.4f} s")


def _run(args: argparse.Namespace) -> dict[str, Any]:
    module: ModuleType = importlib.import_module(f"systems.{args.system}_sys")
    if args.workload not in module.WORKLOADS:
        raise LookupError(f"{args.system} has no {args.workload} workload")
    value, seconds = module.measure(args.workload, args.n, args.warmup, args.procs)
    _check(args.workload, args.n, value, seconds)
    details: dict[str, Any] = getattr(module, "details", dict)()
    return {"seconds": seconds, "ns_per_op": seconds * 1e9 / args.n, **details}


def main(argv: list[str]) -> int:
    args = _parse(argv)
    record: dict[str, Any] = {"system": args.system, "workload": args.workload, "n": args.n}
    try:
        record.update(_run(args))
    except BaseException as exc:  # report anything, including a SystemExit from a runtime
        record["error"] = f"{type(exc).__name__}: {exc}"
        traceback.print_exc(file=sys.stderr)
    print(json.dumps(record), flush=True)
    _arm_exit_watchdog()
    return 1 if "error" in record else 0


def _arm_exit_watchdog() -> None:
    """Leave with EXIT_HUNG if shutting down takes longer than EXIT_GRACE seconds."""

    def bail_out() -> None:
        sys.stderr.flush()
        os._exit(EXIT_HUNG)

    timer = threading.Timer(EXIT_GRACE, bail_out)
    timer.daemon = True
    timer.start()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
