"""The errors of internal/poll (fd.go: ErrNetClosing, ErrDeadlineExceeded)."""

from __future__ import annotations


class ErrClosed(OSError):
    """I/O on a closed descriptor, or a wait that a close interrupted.

    ``str(err)`` is Go's text: ``use of closed network connection``.
    """

    def __init__(self, *args: object) -> None:
        super().__init__(*(args or ("use of closed network connection",)))


class Timeout(TimeoutError):
    """A deadline passed (Go's os.ErrDeadlineExceeded): ``i/o timeout``."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(args or ("i/o timeout",)))
