"""haproxy as the ingress of the local cluster: its configuration, and the backends' states
read from its runtime API."""

from __future__ import annotations

import contextlib
import resource
import socket
from collections.abc import Sequence
from pathlib import Path

from tools.harness.supervisor import Proc


def haproxy_config(
    port: int,
    gateways: Sequence[Proc],
    apis: Sequence[Proc],
    stats_socket: Path,
    maxconn: int,
    check_interval_ms: int = 1000,
) -> str:
    """An ingress in front of the processes: `/ws` → gateways (least connections: sockets are
    long-lived), everything else → API; a backend whose `/readyz` fails (a draining gateway
    answers 503) gets no new connections. `X-Chat-Backend` names the server that answered."""

    def servers(procs: Sequence[Proc]) -> str:
        return "\n".join(f"    server {p.name} 127.0.0.1:{p.port} check" for p in procs)

    return f"""\
global
    maxconn {maxconn}
    stats socket {stats_socket} mode 600 level admin
    hard-stop-after 30s

defaults
    mode http
    option redispatch
    retries 3
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout http-request 10s
    timeout tunnel 1h
    timeout client-fin 5s
    default-server inter {check_interval_ms}ms fastinter 250ms downinter 500ms rise 1 fall 2

frontend chat
    bind 127.0.0.1:{port}
    maxconn {maxconn}
    use_backend gateways if {{ path /ws }}
    default_backend api
    http-response set-header X-Chat-Backend %s

backend gateways
    balance leastconn
    option httpchk
    http-check send meth GET uri /readyz
    http-check expect status 200
{servers(gateways)}

backend api
    balance roundrobin
    option httpchk
    http-check send meth GET uri /readyz
    http-check expect status 200
{servers(apis)}
"""


def haproxy_states(stats_socket: Path) -> dict[str, str]:
    """`backend/server` → status (UP, DOWN, ...) from haproxy's runtime API."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(2)
        s.connect(str(stats_socket))
        s.sendall(b"show stat\n")
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    lines = b"".join(chunks).decode().splitlines()
    header = lines[0].lstrip("# ").split(",")
    name, svname, status = header.index("pxname"), header.index("svname"), header.index("status")
    states = {}
    for line in lines[1:]:
        cols = line.split(",")
        if len(cols) > status and cols[svname] not in ("FRONTEND", "BACKEND"):
            states[f"{cols[name]}/{cols[svname]}"] = cols[status]
    return states


def haproxy_maxconn() -> int:
    """Raise the soft open-files limit to the hard one (children inherit it) and size
    haproxy's maxconn to it: two descriptors per proxied connection, 200 spare."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    return max(256, min(20_000, (int(soft) - 200) // 2))
