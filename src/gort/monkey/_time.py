"""Patched ``time.sleep``: parks the goroutine (gort.sleep), not its M."""

from __future__ import annotations

import time as _time_mod
from typing import SupportsIndex

from ..sleep import sleep as _gort_sleep
from ._core import _originals, in_goroutine


def _sleep(secs: float | SupportsIndex) -> None:
    if in_goroutine():
        d = float(secs) if isinstance(secs, float) else float(secs.__index__())
        if d < 0:
            raise ValueError("sleep length must be non-negative")
        _gort_sleep(d)
    else:
        _originals["time"]["sleep"](secs)


def patch_time() -> bool:
    """time.sleep parks the goroutine (gort.sleep) instead of the M."""
    if "time" in _originals:
        return False
    _originals["time"] = {"sleep": _time_mod.sleep}
    _time_mod.sleep = _sleep
    return True
