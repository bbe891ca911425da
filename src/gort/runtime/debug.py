"""The environment a program starts with (runtime1.go: parsedebugvars).

``GODEBUG`` is a comma-separated list of ``name=value``; gort honours
``schedtrace=MS``, ``scheddetail=1``, ``asyncpreemptoff=1`` and
``blockthreshold=DURATION``, ``leakcheck=1`` (``50ms``, ``1s`` or plain milliseconds), and
ignores names it does not know, as Go does. ``GOTRACEBACK`` is ``none``,
``single`` (the default) or ``all`` (``system`` and ``crash`` read as all).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_BLOCK_THRESHOLD = 0.100  # seconds a G may hold its P before a warning


@dataclass
class DebugVars:
    schedtrace_ms: int = 0
    scheddetail: bool = False
    asyncpreemptoff: bool = False
    block_threshold: float = DEFAULT_BLOCK_THRESHOLD
    traceback: str = "single"
    leakcheck: bool = False  # report goroutines blocked forever when main returns


def parse_duration(text: str) -> float | None:
    """``50ms``, ``2s``, ``300us``, or a bare number of milliseconds."""
    text = text.strip()
    number, scale = text, 1e-3
    for suffix, unit in (("ms", 1e-3), ("us", 1e-6), ("µs", 1e-6), ("ns", 1e-9), ("s", 1.0)):
        if text.endswith(suffix):
            number, scale = text[: -len(suffix)], unit
            break
    try:
        value = float(number)
    except ValueError:
        return None
    return value * scale if value >= 0 else None


def env_seed(environ: dict[str, str] | None = None) -> int | None:
    """``GORT_SCHEDSEED``: an int seeds the scheduler; anything else is ignored,
    as malformed GOMAXPROCS values are."""
    env = os.environ if environ is None else environ
    try:
        return int(env.get("GORT_SCHEDSEED", "").strip())
    except ValueError:
        return None


def parse(environ: dict[str, str] | None = None) -> DebugVars:
    env = os.environ if environ is None else environ
    dv = DebugVars()
    for item in env.get("GODEBUG", "").split(","):
        name, _, value = item.partition("=")
        name = name.strip()
        if name == "schedtrace" and value.strip().isdigit():
            dv.schedtrace_ms = int(value)
        elif name == "scheddetail":
            dv.scheddetail = value.strip() == "1"
        elif name == "leakcheck":
            dv.leakcheck = value.strip() == "1"
        elif name == "asyncpreemptoff":
            dv.asyncpreemptoff = value.strip() == "1"
        elif name == "blockthreshold":
            d = parse_duration(value)
            if d is not None:
                dv.block_threshold = d
    tb = env.get("GOTRACEBACK", "single").strip().lower()
    if tb in ("none", "0"):
        dv.traceback = "none"
    elif tb in ("all", "1", "system", "2", "crash"):
        dv.traceback = "all"
    else:
        dv.traceback = "single"
    return dv
