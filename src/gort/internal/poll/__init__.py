"""Go's internal/poll: descriptors that park goroutines instead of threads.

``FD`` tries each socket call first and, only when the kernel says EAGAIN,
parks the calling goroutine on the descriptor's pollDesc (``IO wait``)
until the runtime's poller sees it ready, a deadline passes or another
goroutine closes it. gort.net, gort.tls, gort.http and the patched socket
module are all built on it; none of them has an I/O loop of its own.
"""

from .fd import ErrClosed, Timeout
from .fd_unix import FD

__all__ = ["FD", "ErrClosed", "Timeout"]
