"""What every patch shares: the saved originals, where a call runs
(``in_goroutine``), ``offload`` and the late-patching warning."""

from __future__ import annotations

import functools
import gc
import sys
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from greenlet import getcurrent

from ..runtime.runtime2 import sched
from ..runtime.syscall import syscall

F = TypeVar("F", bound=Callable[..., Any])

# patched module name -> the attributes it replaced. Written only by the
# patch_* functions (at start-up, before goroutines run); a name present
# here is what is_patched reports.
_originals: dict[str, dict[str, Any]] = {}


class MonkeyWarning(RuntimeWarning):
    """Patching came too late for something already made or imported."""


def in_goroutine() -> bool:
    """True on a goroutine of a running program (where parking is possible)."""
    return getattr(getcurrent(), "gp", None) is not None and sched.running and not sched.exiting


def offload(fn: F) -> F:
    """Run a known-blocking function (a C call that holds the thread) on a
    syscall helper M when called from a goroutine; directly elsewhere.
    Usable as a decorator or as ``offload(lib.call)(args)``."""

    @functools.wraps(fn)
    def offloaded(*args: Any, **kwargs: Any) -> Any:
        if in_goroutine():
            return syscall(fn, *args, **kwargs)
        return fn(*args, **kwargs)

    return offloaded  # type: ignore[return-value]


def _live_instances(cls: type) -> int:
    return sum(1 for o in gc.get_objects() if type(o) is cls)


def _first_importer(module: str) -> str:
    """Where ``module`` was first imported from, as far as sys.modules
    (insertion-ordered) tells: the earliest other loaded module that holds
    it or one of its names, gort's own modules aside."""
    target = sys.modules.get(module)
    if target is None:
        return "nowhere"
    own = (module, "_" + module)
    names = {id(v) for v in vars(target).values() if getattr(v, "__module__", None) in own}
    names.add(id(target))
    holders = [
        (name, mod)
        for name, mod in list(sys.modules.items())
        if name != module
        and (name == "__main__" or not name.startswith(("gort", "_")))
        and mod is not None
        and any(id(v) in names for v in list(vars(mod).values()))
    ]
    # The program's own modules first: the standard library's own imports
    # (gort imports ssl, say) are not what the user can reorder.
    holders.sort(key=lambda h: h[0].partition(".")[0] in sys.stdlib_module_names)
    if not holders:
        return "an unknown module"
    name, mod = holders[0]
    return f"{name} ({getattr(mod, '__file__', None) or 'built-in'})"


def _warn_late(module: str, count: Callable[[], int]) -> None:
    n = count()
    if n:
        warnings.warn(
            f"gort.monkey: patching {module} after it was imported and used: {n} {module} "
            f"object(s) made before patching stay unpatched and block their M; "
            f"{module} was first imported by {_first_importer(module)}. "
            f"Run with `python -m gort --patch` or patch before importing it.",
            MonkeyWarning,
            stacklevel=4,
        )
