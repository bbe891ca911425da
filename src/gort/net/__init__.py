"""gort.net: Go's package net on the runtime's poller.

A goroutine per connection, in straight-line code: reads, writes, accepts
and dials park the goroutine (``IO wait``) and never the thread, so ten
thousand connections cost ten thousand parked goroutines and one epoll set.
"""

from ..internal.poll import ErrClosed, Timeout
from .dial import dial, listen, listen_packet
from .ipsock import Addr, join_host_port, split_host_port
from .lookup import lookup_host
from .net import Conn, Listener, PacketConn

__all__ = [
    "Addr",
    "Conn",
    "ErrClosed",
    "Listener",
    "PacketConn",
    "Timeout",
    "dial",
    "join_host_port",
    "listen",
    "listen_packet",
    "lookup_host",
    "split_host_port",
]
