"""``python -m gort [--procs N] [--schedtrace MS] [--patch] script.py [args...]``.

Like ``go run``: the script is loaded as a module named after its file (so
its own ``if __name__ == "__main__"`` block does not run), ``sys.argv`` is
``[script.py, *args]``, and its ``main()`` runs as goroutine 1. The exit
status is 0 when main returns, 2 after a panic or a deadlock (as a Go
program's), and n after ``sys.exit(n)``.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import inspect
import os
import runpy
import sys
import sysconfig
from collections.abc import Callable
from types import ModuleType
from typing import Any

from greenlet import GreenletExit

from .runtime.panic import Fatal, Panic
from .runtime.runtime2 import sched
from .runtime.startup import run

EXIT_PANIC = 2  # what a Go program exits with after a panic or fatal error


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m gort",
        description="Run a Python script's main() as goroutine 1 under the gort runtime.",
    )
    p.add_argument("--procs", type=int, default=None, help="GOMAXPROCS (default: $GOMAXPROCS or 1)")
    p.add_argument(
        "--schedtrace", type=int, default=None, metavar="MS", help="GODEBUG=schedtrace=MS"
    )
    p.add_argument(
        "--trace",
        default=None,
        metavar="FILE",
        help="write an execution trace (Go's format; .json: Chrome trace-event JSON)",
    )
    p.add_argument(
        "--patch",
        action="store_true",
        help="gort.monkey.patch_all() before the script imports anything",
    )
    p.add_argument("script", nargs="?", help="the script whose main() to run")
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the script")
    return p


def _add_script_dir(path: str) -> None:
    """Make the script's own modules importable, after the standard library:
    a script named json.py or threading.py must not replace those."""
    stdlib = {os.path.realpath(sysconfig.get_paths()[k]) for k in ("stdlib", "platstdlib")}
    at = 0
    for i, entry in enumerate(sys.path):
        real = os.path.realpath(entry) if entry else ""
        if real in stdlib or any(real.startswith(os.path.join(s, "")) for s in stdlib):
            at = i + 1
    sys.path.insert(at, path)


def _load(path: str) -> ModuleType:
    name = os.path.splitext(os.path.basename(path))[0]
    if name in sys.modules or name in sys.stdlib_module_names:
        name = "__gort_main__"  # keep json, threading... what they are
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _with_schedtrace(ms: int) -> None:
    items = [
        i for i in os.environ.get("GODEBUG", "").split(",") if i and not i.startswith("schedtrace=")
    ]
    items.append(f"schedtrace={ms}")
    os.environ["GODEBUG"] = ",".join(items)


def _traced(entry: Callable[[], Any], path: str) -> Callable[[], Any]:
    """main, with the execution tracer on from its first line: the trace
    is written when the program ends, whichever way it ends."""

    def traced_main() -> Any:
        from . import trace

        trace.start(path)
        return entry()

    return traced_main


def _defines_main(path: str) -> bool:
    """Whether the script defines a top-level main() (go run's entry); a
    script that does not is a plain script (``--patch`` runs it whole)."""
    with open(path, "rb") as f:
        try:
            tree = ast.parse(f.read(), path)
        except SyntaxError:
            return True  # _load reports it, as for any script
    return any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "main"
        for node in tree.body
    )


def _run_plain(path: str, procs: int | None, trace: str | None) -> int:
    """``--patch`` on a script without main(): the runtime is started around
    the script's code, run as ``__main__`` in goroutine 1 (threads, locks and
    sockets in it are goroutines and parking calls). As ``python script.py``
    the program then waits for its non-daemon threads and threading's exit
    callbacks (a ThreadPoolExecutor's), and an uncaught exception prints its
    traceback and exits 1; ``sys.exit(x)`` exits as Python does."""
    failed: list[BaseException] = []

    def script_main() -> None:
        try:
            runpy.run_path(path, run_name="__main__")
        except BaseException as e:
            if isinstance(e, GreenletExit) and sched.exiting:
                raise  # the runtime unwinding goroutine 1
            failed.append(e)
            if not isinstance(e, SystemExit):
                _print_exception(e, path)
        _wait_for_threads()

    entry: Callable[[], Any] = script_main
    if trace is not None:
        entry = _traced(entry, trace)
    try:
        run(entry, procs=procs)
    except (Panic, Fatal):
        return EXIT_PANIC  # the runtime has printed what happened
    except KeyboardInterrupt:
        return 130
    if not failed:
        return 0
    e = failed[0]
    if isinstance(e, SystemExit):
        return _exit_status(e.code)
    return 130 if isinstance(e, KeyboardInterrupt) else 1


def _print_exception(e: BaseException, path: str) -> None:
    """sys.excepthook's report, from the script's frame on as Python's."""
    tb = e.__traceback__
    script = os.path.realpath(path)
    while tb is not None and os.path.realpath(tb.tb_frame.f_code.co_filename) != script:
        tb = tb.tb_next
    if tb is not None:
        e.__traceback__ = tb  # the default hook prints the exception's own
    sys.excepthook(type(e), e, e.__traceback__)


def _exit_status(code: Any) -> int:
    """The status ``sys.exit(code)`` gives, as Python's: None is 0, an int
    itself, anything else is printed to stderr and gives 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _wait_for_threads() -> None:
    """What the interpreter does at exit (threading._shutdown): threading's
    exit callbacks, then wait for every non-daemon thread."""
    import threading

    callbacks = getattr(threading, "_threading_atexits", [])
    while callbacks:
        callbacks.pop()()
    me = threading.current_thread()
    while True:
        waiting = [t for t in threading.enumerate() if t is not me and not t.daemon]
        if not waiting:
            return
        for t in waiting:
            t.join()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["trace"]:
        from . import tracetool

        return tracetool.main(args[1:])
    parser = _parser()
    opts = parser.parse_args(argv)
    if opts.script is None:
        parser.print_usage(sys.stderr)
        print("gort: no script given: python -m gort script.py [args...]", file=sys.stderr)
        return EXIT_PANIC
    if opts.procs is not None and opts.procs < 1:
        print("gort: --procs must be at least 1", file=sys.stderr)
        return EXIT_PANIC
    if opts.schedtrace is not None:
        _with_schedtrace(opts.schedtrace)
    if not os.path.isfile(opts.script):
        print(f"gort: {opts.script}: no such file", file=sys.stderr)
        return EXIT_PANIC
    sys.argv = [opts.script, *opts.args]
    if sys.path and os.path.realpath(sys.path[0] or os.curdir) == os.path.realpath(os.curdir):
        _add_script_dir(sys.path.pop(0))  # python -m's current directory, likewise
    _add_script_dir(os.path.dirname(os.path.abspath(opts.script)))
    if opts.patch:
        from . import monkey

        monkey.patch_all()
        if not _defines_main(opts.script):
            return _run_plain(opts.script, opts.procs, opts.trace)
    module = _load(opts.script)
    entry: Callable[[], Any] | None = getattr(module, "main", None)
    if not callable(entry):
        print(f"gort: {opts.script} has no main()", file=sys.stderr)
        return EXIT_PANIC
    if inspect.iscoroutinefunction(entry):
        print(
            f"gort: {opts.script}: main is an async function; gort runs plain functions "
            "(goroutines need no async/await): drop the async and await",
            file=sys.stderr,
        )
        return EXIT_PANIC
    if opts.trace is not None:
        entry = _traced(entry, opts.trace)
    try:
        run(entry, procs=opts.procs)
    except (Panic, Fatal):
        return EXIT_PANIC  # the runtime has printed what happened
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
