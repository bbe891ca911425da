"""Patched ``select.select``: waits without holding the goroutine's M."""

from __future__ import annotations

import select as _select_mod
from typing import Any

from ..runtime.syscall import syscall
from ._core import _originals, in_goroutine


def _select(rlist: Any, wlist: Any, xlist: Any, timeout: float | None = None) -> Any:
    orig = _originals["select"]["select"]
    if not in_goroutine() or timeout == 0:
        return orig(rlist, wlist, xlist, timeout)
    ready = orig(rlist, wlist, xlist, 0)
    if any(ready):
        return ready
    return syscall(orig, rlist, wlist, xlist, timeout)


def patch_select() -> bool:
    """select.select waits without holding the goroutine's M."""
    if "select" in _originals:
        return False
    _originals["select"] = {"select": _select_mod.select}
    _select_mod.select = _select
    return True
