"""The servers the benchmark compares, each started on free loopback ports and stopped again.

Every target says which processes are "the server" (by role, for per-process CPU), which of
them hold the sockets (for memory per socket), which Redis it uses (for commands per message)
and how to lay out N sockets in rooms of R for the load generator.

* `chat-cluster`: `tools.devcluster` (redis-server with `appendfsync always`, PostgreSQL 15,
  FerretDB, migrate, two gateways, an API, a worker, haproxy); sockets alternate between the two
  gateway ports, so every room spans both and every message crosses Redis.
* `chat-embedded`: `python -m chat dev`, one process, SQLite with fsync.
* `centrifugo-redis`: Centrifugo v6.9.1, two nodes, Redis engine on a redis-server with
  `appendfsync always`, history (1000 per channel, 300 s) and forced recovery on.
* `centrifugo-memory`: one node, memory engine, the same channel options.
* `socketio`: python-socketio 5.18 on Tornado, two nodes, Redis manager (pub/sub only).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.devcluster.cluster import AppCluster
from tools.devcluster.servers import Services
from tools.harness.net import free_port, http_ok, tcp_open
from tools.harness.recipes import redis_proc
from tools.harness.supervisor import Proc
from tools.harness.versions import ferretdb_binary

ROOT = Path(__file__).resolve().parent.parent

# Limits raised so that the benchmark measures cost, not the product's abuse limits.
CHAT_ENV = {
    "CHAT_LIMIT_SEND_RATE_PER_S": "100000",
    "CHAT_LIMIT_SEND_BURST": "100000",
    "CHAT_LIMIT_MAX_CONNECTIONS_PER_USER": "1000",
    "CHAT_LIMIT_OUTBOUND_QUEUE_FRAMES": "100000",
    "CHAT_LIMIT_OUTBOUND_QUEUE_BYTES": str(256 * 1024 * 1024),
    "CHAT_LIMIT_REGISTER_BURST_PER_IP": "100000",  # every bench user signs up from here
    "CHAT_LIMIT_MAX_CONNECTION_AGE_S": "0",
    "CHAT_ACCESS_TTL_S": "86400",  # tokens are issued once, at setup; a run lasts < 1 h
}
CHAT_USERS = 200  # accounts per chat target (argon2 makes each registration ~35 ms of CPU)


@dataclass
class Layout:
    """Sockets for one run: what the load generator's plan needs."""

    protocol: str
    origin: str
    sockets: list[dict[str, str]]


def _post(base: str, path: str, body: dict[str, Any], token: str = "") -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(
        base + path, data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        out: dict[str, Any] = json.loads(resp.read())
    return out


def _hs256(secret: str, claims: dict[str, Any]) -> str:
    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


@dataclass
class Target:
    name: str
    label: str
    protocol: str
    workdir: Path
    procs: dict[str, list[Proc]] = field(default_factory=dict)
    """Server processes by role; each one's whole process tree counts."""
    front: list[Proc] = field(default_factory=list)
    """The processes that hold the client sockets."""
    redis_ports: list[int] = field(default_factory=list)
    mongo_debug_ports: list[int] = field(default_factory=list)
    """FerretDB debug ports whose request counters are read around each window."""
    python_pids: list[int] = field(default_factory=list)
    """Processes py-spy can profile (--profile)."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        for procs in reversed(list(self.procs.values())):
            for p in procs:
                p.stop()

    def roles(self) -> dict[str, list[int]]:
        return {role: [p.pid for p in procs] for role, procs in self.procs.items()}

    def layout(self, sockets: int, room: int, tag: str) -> Layout:
        raise NotImplementedError

    def _start_all(self, procs: list[Proc]) -> None:
        for p in procs:
            p.start(wait=False)
        for p in procs:
            p.wait_ready()


class ChatTarget(Target):
    """Both chat modes: accounts registered once, conversations created once per size."""

    base = ""
    ws_urls: list[str]
    tokens: list[str]
    ids: list[str]
    groups: dict[int, list[str]]

    def _register(self) -> None:
        run = secrets.token_hex(3)

        def one(i: int) -> tuple[str, str]:
            out = _post(
                self.base,
                "/api/v1/auth/register",
                {"username": f"b{run}u{i}", "password": f"bench-pw-{run}-{i}-x"},
            )
            return out["user"]["id"], out["access_token"]

        with ThreadPoolExecutor(4) as pool:
            pairs = list(pool.map(one, range(CHAT_USERS)))
        self.ids = [p[0] for p in pairs]
        self.tokens = [p[1] for p in pairs]
        self.groups = {}

    def _conversations(self, users_per_group: int) -> list[str]:
        """Conversation of each user, groups of `users_per_group`, made once per size (a user
        in many conversations would be subscribed to all of them at `auth`)."""
        if users_per_group not in self.groups:
            conv: list[str] = []
            for g in range(0, CHAT_USERS, users_per_group):
                members = self.ids[g : g + users_per_group]
                out = _post(
                    self.base,
                    "/api/v1/conversations",
                    {"kind": "group", "title": f"bench {g}", "member_ids": members},
                    self.tokens[g],
                )
                conv += [out["id"]] * len(members)
            self.groups[users_per_group] = conv
        return self.groups[users_per_group]

    def layout(self, sockets: int, room: int, tag: str) -> Layout:
        """Sockets k*U .. k*U+U-1 are one socket of each of the U users; a room of R sockets is
        a conversation of R / (sockets / U) users, each with sockets / U sockets."""
        per_user = max(1, sockets // CHAT_USERS)
        users = sockets // per_user
        if users * per_user != sockets or users > CHAT_USERS or room % per_user:
            raise ValueError(
                f"{sockets} sockets in rooms of {room}: not a layout of {CHAT_USERS} users"
            )
        users_per_room = max(1, room // per_user)
        conv = self._conversations(users_per_room)
        out = []
        for k in range(sockets):
            u = k % users
            url = self.ws_urls[k % len(self.ws_urls)]
            out.append({"url": url, "token": self.tokens[u], "room": conv[u]})
        return Layout("chat", self.base, out)


class ChatCluster(ChatTarget):
    services: Services
    cluster: AppCluster

    def start(self) -> None:
        self.services = Services(self.workdir / "servers", ferretdb_binary())
        backing = self.services.start()
        # haproxy probes readiness as often as Kubernetes does in the operator's pods
        # (`readinessProbe.periodSeconds` 5, chat_operator/builders/workloads.py), not every
        # second as the tests' does: each probe is a Redis command, which the peers, run
        # without health checks, are not charged.
        self.cluster = AppCluster(
            backing, self.workdir, gateways=2, workers=1, env=CHAT_ENV, check_interval_ms=5000
        )
        try:
            self.cluster.start()
        except BaseException:
            self.cluster.stop()
            self.services.stop()
            raise
        self.base = self.cluster.url
        self.ws_urls = [f"ws://127.0.0.1:{p.port}/ws" for p in self.cluster.ws]
        by_name = {p.name: p for p in self.services.procs}
        self.procs = {
            "gateways": self.cluster.ws,
            "api": self.cluster.api,
            "worker": self.cluster.worker,
            "redis": [by_name["redis"]],
            "postgres": [by_name["postgres"]],
            "ferretdb": [by_name["ferretdb"]],
        }
        if self.cluster.haproxy is not None:
            self.procs["haproxy"] = [self.cluster.haproxy]
        self.front = list(self.cluster.ws)
        self.redis_ports = [by_name["redis"].port]
        self.mongo_debug_ports = [self.services.ferretdb_debug_port]
        self.python_pids = [p.pid for p in [*self.cluster.ws, *self.cluster.worker]]
        self._register()

    def stop(self) -> None:
        self.cluster.stop()
        self.services.stop()


class ChatEmbedded(ChatTarget):
    def start(self) -> None:
        port = free_port()
        env = {**os.environ, **CHAT_ENV, "PYTHONUNBUFFERED": "1"}
        argv = [sys.executable, "-m", "chat", "dev", "--data-dir", str(self.workdir / "data")]
        proc = Proc(
            "embedded",
            [*argv, "--port", str(port)],
            self.workdir / "embedded.log",
            env=env,
            port=port,
            ready=lambda p: http_ok(f"http://127.0.0.1:{p.port}/readyz"),
            cwd=ROOT,
        )
        self._start_all([proc])
        self.procs = {"process": [proc]}
        self.front = [proc]
        self.python_pids = [proc.pid]
        self.base = f"http://127.0.0.1:{port}"
        self.ws_urls = [f"ws://127.0.0.1:{port}/ws"]
        self._register()


def _node_ready(path: str) -> Any:
    return lambda p: http_ok(f"http://127.0.0.1:{p.port}{path}")


class Centrifugo(Target):
    binary: Path
    nodes: int
    engine: str
    secret: str = ""

    def start(self) -> None:
        self.secret = secrets.token_urlsafe(32)
        engine: dict[str, Any] = {"type": "memory"}
        procs: list[Proc] = []
        if self.engine == "redis":
            (self.workdir / "redis").mkdir(parents=True, exist_ok=True)
            redis = redis_proc(self.workdir / "redis")  # appendonly yes, appendfsync always
            self._start_all([redis])
            self.procs["redis"] = [redis]
            self.redis_ports = [redis.port]
            engine = {"type": "redis", "redis": {"address": [f"redis://127.0.0.1:{redis.port}"]}}
        for i in range(self.nodes):
            port = free_port()
            config = {
                "http_server": {"address": "127.0.0.1", "port": port},
                "log": {"level": "error"},
                "health": {"enabled": True},
                "client": {
                    "token": {"hmac_secret_key": self.secret},
                    "allowed_origins": ["*"],
                },
                "engine": engine,
                "channel": {
                    "without_namespace": {
                        "allow_subscribe_for_client": True,
                        "allow_publish_for_subscriber": True,
                        "history_size": 1000,
                        "history_ttl": "300s",
                        "force_recovery": True,
                    }
                },
            }
            path = self.workdir / f"node{i}.json"
            path.write_text(json.dumps(config))
            procs.append(
                Proc(
                    f"centrifugo{i}",
                    [str(self.binary), "--config", str(path)],
                    self.workdir / f"node{i}.log",
                    port=port,
                    ready=_node_ready("/health"),
                    cwd=self.workdir,
                )
            )
        self._start_all(procs)
        self.procs = {"nodes": procs, **self.procs}
        self.front = procs

    def layout(self, sockets: int, room: int, tag: str) -> Layout:
        exp = int(time.time()) + 86400
        out = []
        for k in range(sockets):
            node = self.front[k % len(self.front)]
            token = _hs256(self.secret, {"sub": f"u{k}", "exp": exp})
            out.append(
                {
                    "url": f"ws://127.0.0.1:{node.port}/connection/websocket",
                    "token": token,
                    "room": f"{tag}-{k // room}",
                }
            )
        return Layout("centrifugo", "", out)


class SocketIO(Target):
    venv: Path

    def start(self) -> None:
        (self.workdir / "redis").mkdir(parents=True, exist_ok=True)
        redis = redis_proc(self.workdir / "redis")
        self._start_all([redis])
        self.procs["redis"] = [redis]
        self.redis_ports = [redis.port]
        procs = []
        script = ROOT / "bench" / "peers" / "socketio_server.py"
        for i in range(2):
            port = free_port()
            argv = [str(self.venv / "bin" / "python"), str(script), "--port", str(port)]
            procs.append(
                Proc(
                    f"socketio{i}",
                    [*argv, "--redis", f"redis://127.0.0.1:{redis.port}/0"],
                    self.workdir / f"socketio{i}.log",
                    env={"PATH": os.environ.get("PATH", ""), "PYTHONUNBUFFERED": "1"},
                    port=port,
                    ready=lambda p: tcp_open(p.port),
                    cwd=self.workdir,
                )
            )
        self._start_all(procs)
        self.procs = {"nodes": procs, **self.procs}
        self.front = procs
        self.python_pids = [p.pid for p in procs]

    def layout(self, sockets: int, room: int, tag: str) -> Layout:
        out = []
        for k in range(sockets):
            node = self.front[k % len(self.front)]
            out.append(
                {"url": f"ws://127.0.0.1:{node.port}", "token": "", "room": f"{tag}-{k // room}"}
            )
        return Layout("socketio", "", out)


LABELS = {
    "chat-cluster": "chat cluster (2 gateways, Redis `appendfsync always`, worker, FerretDB)",
    "centrifugo-redis": (
        "Centrifugo v6.9.1, 2 nodes, Redis engine, fsync always, history + recovery"
    ),
    "socketio": "python-socketio 5.18 + Redis manager, 2 nodes (no history, no durability)",
    "chat-embedded": "chat embedded (one process, SQLite fsync)",
    "centrifugo-memory": "Centrifugo v6.9.1 memory engine, 1 node, history + recovery",
}
ALL = tuple(LABELS)


def make(name: str, root: Path, centrifugo: Path, venv: Path) -> Target:
    workdir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=root))
    workdir.chmod(0o755)  # the postgres user must reach its data directory
    label = LABELS[name]
    if name == "chat-cluster":
        return ChatCluster(name, label, "chat", workdir)
    if name == "chat-embedded":
        return ChatEmbedded(name, label, "chat", workdir)
    if name.startswith("centrifugo"):
        t = Centrifugo(name, label, "centrifugo", workdir)
        t.binary, t.engine = centrifugo, name.split("-")[1]
        t.nodes = 2 if t.engine == "redis" else 1
        return t
    if name == "socketio":
        s = SocketIO(name, label, "socketio", workdir)
        s.venv = venv
        return s
    raise ValueError(name)
