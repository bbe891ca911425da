"""Panics and fatal errors (runtime/panic.go).

Go has two ways for a program to die: a panic that no one recovers, and a
fatal error (``throw``), such as the deadlock that checkdead finds. gort
keeps both: ``Panic`` carries Go's message as ``str()``, ``Deadlock`` is the
exception ``run`` raises for checkdead's fatal error.
"""

from __future__ import annotations


class Panic(Exception):
    """A Go panic. ``str(p)`` is Go's message, e.g. ``send on closed channel``."""


class Fatal(Exception):
    """A fatal error (Go's ``throw``): the runtime cannot go on.

    ``str(f)`` is the text after ``fatal error:``, e.g. ``thread exhaustion``.
    """


class Deadlock(Fatal):
    """checkdead's fatal error: ``all goroutines are asleep - deadlock!``."""


class Goexit(BaseException):
    """Unwinds the calling goroutine for ``gort.goexit()``; finally-blocks run.

    A BaseException so that ``except Exception`` in user code does not stop
    it, as nothing in Go can recover a Goexit.
    """


def outside(call: str) -> RuntimeError:
    """The error for a runtime call made where there is no goroutine."""
    return RuntimeError(f"{call} called outside a goroutine (is gort.run active on this thread?)")


def panic_message(exc: BaseException) -> str:
    """What follows ``panic: `` for an exception that escaped a goroutine."""
    try:
        text = str(exc)
    except Exception:
        text = "<exception str() failed>"  # Python's own wording
    if isinstance(exc, Panic):
        return text
    name = type(exc).__name__
    return f"{name}: {text}" if text else name
