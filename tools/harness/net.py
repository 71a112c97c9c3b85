"""Loopback ports and readiness probes. Everything the harness starts listens on 127.0.0.1."""

from __future__ import annotations

import socket
import urllib.request

_HANDED_OUT: set[int] = set()
"""Ports this process gave out: the kernel may offer a port again once the probe socket is
closed, before the server it was meant for has bound it (a CI run saw a gateway's metrics
port taken by its neighbour: `Address already in use`)."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now and not handed out before by this process (a
    race with another process is still possible, and has not been seen on loopback)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def tcp_open(port: int) -> bool:
    """Something accepts connections on 127.0.0.1:`port` (raises while nothing does)."""
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def http_ok(url: str, timeout_s: float = 2.0) -> bool:
    """`GET url` answers 200 (raises on a refused connection or an error status)."""
    with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 (loopback URL)
        return int(resp.status) == 200
