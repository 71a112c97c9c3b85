"""What the benchmark reads from the machine: CPU-seconds of process trees and RSS from /proc,
the load average, and Redis command counts (INFO commandstats)."""

from __future__ import annotations

import contextlib
import os
import socket
import urllib.request
from collections import Counter
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    return children


def tree(roots: list[int]) -> list[int]:
    """The roots and all their descendants (PostgreSQL forks a backend per connection, the
    Dramatiq worker forks its worker process)."""
    children = _children()
    out, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def cpu_s(pid: int) -> float:
    """utime + stime of one process, in seconds (0 if it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_by_role(roles: dict[str, list[int]]) -> dict[str, float]:
    """CPU-seconds so far of each role's process trees. A process that exits inside a window
    takes its CPU with it (its parent only collects it at wait), so windows compare deltas of
    long-lived trees; PostgreSQL backends live as long as the pool's connections."""
    children = _children()
    out: dict[str, float] = {}
    for role, roots in roles.items():
        total, todo = 0.0, list(roots)
        while todo:
            pid = todo.pop()
            total += cpu_s(pid)
            todo += children.get(pid, [])
        out[role] = total
    return out


def rss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def redis_calls(port: int) -> Counter[str]:
    """Commands this Redis has executed so far, per command (INFO commandstats `calls`, which
    counts the commands a script runs as well as the script call), read over a raw socket so
    that the numbers include only the one INFO command of the reading itself."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"INFO commandstats\r\n")
        data = b""
        while not data.startswith(b"$") or b"\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        length = int(data[1 : data.index(b"\r\n")])
        body_start = data.index(b"\r\n") + 2
        while len(data) < body_start + length:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    calls: Counter[str] = Counter()
    for line in data[body_start : body_start + length].decode().splitlines():
        if line.startswith("cmdstat_"):
            name, _, stats = line[len("cmdstat_") :].partition(":")
            for part in stats.split(","):
                key, _, value = part.partition("=")
                if key == "calls":
                    calls[name] += int(value)
    return calls


MONGO_MONITORING = frozenset({"ismaster", "isMaster", "hello", "ping", "endSessions", "buildInfo"})
"""Commands of the drivers' server monitoring and session housekeeping, which run on a timer
per client, not per message: left out of the round trips counted."""


def mongo_requests(debug_port: int) -> Counter[str]:
    """Requests FerretDB has served so far, per command, from its
    `ferretdb_client_requests_total` counter (`/debug/metrics`), monitoring commands left out:
    each one is a MongoDB round trip."""
    with urllib.request.urlopen(f"http://127.0.0.1:{debug_port}/debug/metrics", timeout=5) as r:
        text = r.read().decode()
    calls: Counter[str] = Counter()
    for family in text_string_to_metric_families(text):
        if family.name != "ferretdb_client_requests":  # the parser drops `_total`
            continue
        for sample in family.samples:
            command = sample.labels["command"]
            if sample.name.endswith("_total") and command not in MONGO_MONITORING:
                calls[command] += int(sample.value)
    return calls
