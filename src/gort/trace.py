"""gort.trace: Go's runtime/trace for gort programs.

``start(dest)`` records every scheduling event of the running program until
``stop()`` (or the end of the run, whichever comes first: a program that
panics or deadlocks while tracing still leaves a complete file). The file
is Go's own trace format, version 1.19, which ``go tool trace`` opens, or
Chrome trace-event JSON (Perfetto, chrome://tracing) with ``format="json"``
or a path ending in ``.json``.

User annotations, as Go 1.11's::

    ctx, task = gort.trace.new_task(ctx, "make coffee")
    with gort.trace.region(ctx, "grind"):
        ...
    gort.trace.log(ctx, "orderID", "42")
    task.end()

``ctx`` is a gort context (or None): the task rides in it as a value, so
regions and logs made with a derived context belong to that task.
"""

from __future__ import annotations

import os
from typing import IO, Any, BinaryIO, cast

from .runtime import trace as _rt
from .runtime.runtime2 import sched

__all__ = ["Task", "is_enabled", "log", "new_task", "region", "start", "stop"]

FORMATS = ("go", "json")


class _Session:
    """Where the running trace goes, and whether we opened it."""

    def __init__(self, dest: IO[bytes], fmt: str, owned: bool) -> None:
        self.dest = dest
        self.fmt = fmt
        self.owned = owned
        self.nbytes = 0
        self.nevents = 0


_session: _Session | None = None


def format_for(path: str) -> str:
    """The format a path asks for: ``.json`` is JSON, anything else Go's."""
    return "json" if path.lower().endswith(".json") else "go"


def start(dest: str | os.PathLike[str] | IO[bytes], format: str | None = None) -> None:
    """Start tracing the running program into dest (a path or a binary file).

    Raises RuntimeError outside ``gort.run`` or when tracing is already on,
    ValueError for an unknown format.
    """
    global _session
    if format is not None and format not in FORMATS:
        raise ValueError(f"gort.trace.start: format must be 'go' or 'json', not {format!r}")
    if not sched.running:
        raise RuntimeError("gort.trace.start called outside gort.run")
    if _session is not None or _rt.tracer is not None:
        raise RuntimeError("tracing is already enabled")
    if isinstance(dest, (str, os.PathLike)):
        path = os.fspath(dest)
        fmt = format or format_for(path)
        f: IO[bytes] = open(path, "wb")  # noqa: SIM115 (closed by stop)
        owned = True
    else:
        fmt = format or "go"
        f, owned = dest, False
    session = _Session(f, fmt, owned)
    try:
        _rt.start()
    except BaseException:
        if owned:
            f.close()
        raise
    _session = session
    sched.close_hooks.append(_at_exit)


def stop() -> None:
    """Stop tracing and write the trace out. A no-op when tracing is off."""
    global _session
    session = _session
    if session is None:
        return
    _session = None
    t = _rt.stop()
    try:
        if t is not None:
            session.nbytes = _rt.write(t, cast(BinaryIO, session.dest), session.fmt)
    finally:
        if session.owned:
            session.dest.close()
    global last_stats
    last_stats = session


last_stats: _Session | None = None  # the last finished session (bytes written)


def _at_exit() -> None:
    """The run ends (main returned, a panic, a deadlock, os.Exit) while tracing."""
    stop()


def is_enabled() -> bool:
    """Whether tracing is on (Go's trace.IsEnabled)."""
    return sched.tracing


# ---------------------------------------------------------------------------
# Tasks, regions, logs.


class _TaskKey:
    __slots__ = ()

    def __repr__(self) -> str:
        return "gort.trace task"


_TASK_KEY = _TaskKey()


class Task:
    """A logical operation (Go's trace.Task): ``end()`` marks its end."""

    __slots__ = ("id", "name")

    def __init__(self, tid: int, name: str) -> None:
        self.id = tid
        self.name = name

    def end(self) -> None:
        if self.id and sched.tracing:
            _rt.user_task_end(self.id)

    def __repr__(self) -> str:
        return f"<gort.trace.Task {self.id} {self.name!r}>"


class _TaskContext:
    """The context new_task returns when the parent is not a gort context."""

    __slots__ = ("_parent", "_task")

    def __init__(self, parent: Any, task: Task) -> None:
        self._parent = parent
        self._task = task

    def value(self, key: Any) -> Any:
        if key is _TASK_KEY:
            return self._task
        parent = self._parent
        return parent.value(key) if hasattr(parent, "value") else None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._parent, name)


def _task_of(ctx: Any) -> Task | None:
    value = getattr(ctx, "value", None)
    if value is None:
        return None
    task = value(_TASK_KEY)
    return task if isinstance(task, Task) else None


def new_task(ctx: Any, name: str) -> tuple[Any, Task]:
    """Create a task as a child of ctx's task; returns (derived ctx, task)."""
    parent = _task_of(ctx)
    tid = _rt.user_task_create(parent.id if parent else 0, str(name)) if sched.tracing else 0
    task = Task(tid, str(name))
    with_value = _with_value()
    if with_value is not None and ctx is not None and hasattr(ctx, "done"):
        return with_value(ctx, _TASK_KEY, task), task
    return _TaskContext(ctx, task), task


def _with_value() -> Any:
    import gort

    return getattr(gort, "with_value", None)


class region:
    """``with region(ctx, "name"):`` marks a region of the calling goroutine."""

    __slots__ = ("name", "tid", "traced")

    def __init__(self, ctx: Any, name: str) -> None:
        task = _task_of(ctx)
        self.tid = task.id if task else 0
        self.name = str(name)
        self.traced = False

    def __enter__(self) -> region:
        self.traced = sched.tracing
        if self.traced:
            _rt.user_region(self.tid, 0, self.name)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.traced and sched.tracing:
            _rt.user_region(self.tid, 1, self.name)


def log(ctx: Any, category: str, message: str) -> None:
    """Record a message with a category, in ctx's task (Go's trace.Log)."""
    if sched.tracing:
        task = _task_of(ctx)
        _rt.user_log(task.id if task else 0, str(category), str(message))
