"""`AppCluster`: `migrate`, then N gateways, one API, M workers and haproxy in front, as real
`python -m chat` processes against the given Redis, PostgreSQL and MongoDB."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tools.devcluster.haproxy import haproxy_config, haproxy_maxconn, haproxy_states
from tools.harness.net import free_port, http_ok
from tools.harness.supervisor import ChildFailed, Proc, logged, wait_until


@dataclass
class Backing:
    """Where the cluster keeps its state."""

    redis_url: str
    postgres_dsn: str
    mongodb_uri: str
    mongodb_database: str = "chat"


@dataclass
class AppCluster:
    """`migrate`, then N gateways, one API, M workers and haproxy, on the given state."""

    backing: Backing
    workdir: Path
    gateways: int = 2
    workers: int = 2
    port: int = 0
    jwt_secret: str = ""
    env: Mapping[str, str] = field(default_factory=dict)
    """Extra environment for the chatcluster processes (CHAT_LIMIT_*, ...)."""
    worker_threads: int = 2
    check_interval_ms: int = 1000
    """How often haproxy asks each process's `/readyz` (tests: 1 s, so a drained or killed
    process leaves the rotation fast; the benchmark: the operator's readiness period)."""
    python: str = sys.executable
    ws: list[Proc] = field(default_factory=list)
    api: list[Proc] = field(default_factory=list)
    worker: list[Proc] = field(default_factory=list)
    haproxy: Proc | None = None

    def __post_init__(self) -> None:
        self.port = self.port or free_port()
        self.jwt_secret = self.jwt_secret or secrets.token_urlsafe(48)
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def stats_socket(self) -> Path:
        return self.workdir / "haproxy.sock"

    def process_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            CHAT_BACKEND="cluster",
            CHAT_HOST="127.0.0.1",
            REDIS_URL=self.backing.redis_url,
            POSTGRES_DSN=self.backing.postgres_dsn,
            MONGODB_URI=self.backing.mongodb_uri,
            MONGODB_DATABASE=self.backing.mongodb_database,
            CHAT_JWT_SECRET=self.jwt_secret,
            # Browsers and clients come through the ingress: that is the only Origin.
            CHAT_PUBLIC_URL=self.url,
            PYTHONUNBUFFERED="1",
        )
        env.update(self.env)
        return env

    def _chat(self, name: str, args: list[str], port: int = 0) -> Proc:
        ready: Callable[[Proc], bool] | None = None
        if port:

            def ready(p: Proc) -> bool:
                return http_ok(f"http://127.0.0.1:{p.port}/readyz")

        log = self.workdir / "logs" / f"{name}.log"
        argv = [self.python, "-m", "chat", *args]
        return Proc(name, argv, log, env=self.process_env(), port=port, ready=ready)

    def migrate(self) -> None:
        out = subprocess.run(  # noqa: S603 (fixed argv, no shell)
            [self.python, "-m", "chat", "migrate"],
            env=self.process_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if out.returncode != 0:
            raise ChildFailed(f"migrate failed ({out.returncode}):\n{out.stdout}{out.stderr}")

    def start(self) -> None:
        self.migrate()
        # Every process has its own internal metrics listener (CHAT_METRICS_PORT's default
        # would collide on one machine).
        for i in range(self.gateways):
            port = free_port()
            args = ["ws", "--port", str(port), "--metrics-port", str(free_port())]
            self.ws.append(self._chat(f"ws{i}", args, port))
        port = free_port()
        args = ["api", "--port", str(port), "--metrics-port", str(free_port())]
        self.api.append(self._chat("api0", args, port))
        for i in range(self.workers):
            args = ["worker", "--processes", "1", "--threads", str(self.worker_threads)]
            worker = self._chat(f"worker{i}", [*args, "--metrics-port", str(free_port())])
            worker.ready = logged(b"worker ready")
            self.worker.append(worker)
        procs = [*self.ws, *self.api, *self.worker]
        for p in procs:
            p.start(wait=False)
        for p in procs:
            p.wait_ready()
        self.start_haproxy()

    def start_haproxy(self) -> None:
        cfg = self.workdir / "haproxy.cfg"
        cfg.write_text(
            haproxy_config(
                self.port,
                self.ws,
                self.api,
                self.stats_socket,
                haproxy_maxconn(),
                check_interval_ms=self.check_interval_ms,
            )
        )
        haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
        check = subprocess.run(  # noqa: S603 (fixed argv, no shell)
            [haproxy, "-c", "-q", "-f", str(cfg)], capture_output=True, text=True, check=False
        )
        if check.returncode != 0:
            raise ChildFailed(f"haproxy rejected {cfg}:\n{check.stdout}{check.stderr}")
        # SIGUSR1 is haproxy's soft stop: stop listening, let open connections finish.
        self.haproxy = Proc(
            "haproxy",
            [haproxy, "-db", "-f", str(cfg)],
            self.workdir / "logs" / "haproxy.log",
            port=self.port,
            stop_signal=signal.SIGUSR1,
            ready=lambda _: self.all_up(),
        )
        self.haproxy.start()

    def all_up(self, expected: Sequence[Proc] | None = None) -> bool:
        """haproxy's health checks see every (or every `expected`) backend as UP."""
        states = haproxy_states(self.stats_socket)
        wanted = expected if expected is not None else [*self.ws, *self.api]
        return all(states.get(self.backend_key(p)) == "UP" for p in wanted)

    def backend_key(self, proc: Proc) -> str:
        return f"{'gateways' if proc in self.ws else 'api'}/{proc.name}"

    def wait_backend(self, proc: Proc, state: str, timeout_s: float = 30.0) -> None:
        """Until haproxy's health checks report `proc` as `state` ("UP", "DOWN")."""
        key = self.backend_key(proc)
        wait_until(
            lambda: haproxy_states(self.stats_socket).get(key, "").startswith(state),
            timeout_s,
            f"haproxy seeing {key} {state}",
        )

    def processes(self) -> list[Proc]:
        return [p for p in (self.haproxy, *self.ws, *self.api, *self.worker) if p is not None]

    def stop(self) -> dict[str, int | None]:
        """Front first: haproxy, gateways (drain: close 1012), API, workers. Exit codes."""
        codes: dict[str, int | None] = {}
        if self.haproxy is not None:
            codes["haproxy"] = self.haproxy.stop(10)
        for group in (self.ws, self.api, self.worker):
            # Signal the whole group first, so its members drain in parallel.
            for p in group:
                p.send_signal(p.stop_signal)
            for p in group:
                codes[p.name] = p.stop()
        return codes
