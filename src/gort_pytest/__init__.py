"""gort's pytest plugin, as pytest's ``pytest11`` entry point loads it.

pytest loads entry-point plugins before it applies the ``pythonpath`` ini
option, so importing ``gort`` here would pin the installed copy even when
a project's tests ask for another one (a git worktree testing its own
``src/``). This shim therefore declares only what pytest needs before the
configuration exists, and imports the plugin proper, ``gort.testing``, in
``pytest_configure``, when sys.path is final.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "gort_mode",
        "run every test function as goroutine 1 of its own gort.run (as @pytest.mark.gort)",
        type="bool",
        default=False,
    )
    parser.addini(
        "gort_leak_timeout",
        "seconds a gort test's leftover goroutines and threads get to finish (default 1)",
        default="1.0",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    from gort import testing

    if not config.pluginmanager.is_registered(testing):
        config.pluginmanager.register(testing, "gort.testing")
    testing.configure(config)
