"""Loopback ports and readiness probes. Everything the harness starts listens on 127.0.0.1."""

from __future__ import annotations

import socket
import urllib.request


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the kernel's pick; a race with another process
    is possible but has not been seen on loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tcp_open(port: int) -> bool:
    """Something accepts connections on 127.0.0.1:`port` (raises while nothing does)."""
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def http_ok(url: str, timeout_s: float = 2.0) -> bool:
    """`GET url` answers 200 (raises on a refused connection or an error status)."""
    with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 (loopback URL)
        return int(resp.status) == 200
