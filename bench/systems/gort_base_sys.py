"""gort from another checkout (``GORT_BASE_SRC``), e.g. a baseline commit's ``src``.

The workloads are gort_sys's, imported after that tree is put first on ``sys.path``,
so both columns run the same code against two versions of the runtime.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.environ["GORT_BASE_SRC"])

from systems.gort_sys import WORKLOADS, details, measure

__all__ = ["WORKLOADS", "details", "measure"]
