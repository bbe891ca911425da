"""What the benchmark drivers that start servers share: a free loopback
port, and waiting until a started server listens on it."""

from __future__ import annotations

import socket
import subprocess
import time


def free_port() -> int:
    """A loopback port free now (the kernel's pick; a server binds it next)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], limit: float = 20.0) -> None:
    """Return once 127.0.0.1:port accepts; raise if proc exits first or
    nothing listens within limit seconds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start listening")
