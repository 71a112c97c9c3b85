"""Wiring: settings in, a running domain with its stores, broker and (in embedded mode) an
in-process worker out. The one place where implementations are chosen."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import dramatiq

from chat.app.queueing import broker_and_queue
from chat.config import Backend, Settings, embedded_secret
from chat.domain.chat import Chat, Ports, build_chat
from chat.domain.clock import Clock, system_clock
from chat.domain.passwords import PasswordHasher
from chat.domain.tokens import TokenIssuer
from chat.metrics import Metrics
from chat.oidc.client import OidcClient
from chat.store_metrics import timed_ports
from chat.worker.actors import Actors, register_actors
from chat.worker.queue import DramatiqQueue
from chat.worker.runner import LoopRunner
from chat.worker.schedule import enqueue_maintenance

log = logging.getLogger(__name__)


class OpenPorts(Protocol):
    ports: Ports

    async def close(self) -> None: ...


@dataclass
class Runtime:
    settings: Settings
    chat: Chat
    metrics: Metrics
    broker: dramatiq.Broker
    actors: Actors
    queue: DramatiqQueue
    _opened: OpenPorts
    _worker: dramatiq.Worker | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    oidc: OidcClient | None = None
    cookie_secret: str = ""
    """Signs short-lived browser cookies (the OIDC login state); derived from the JWT key."""
    parts: dict[str, object] = field(default_factory=dict)
    """Per-process singletons built on demand (the gateway)."""
    draining: bool = False
    _drain_hooks: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def on_drain(self, hook: Callable[[], Awaitable[None]]) -> None:
        self._drain_hooks.append(hook)

    async def drain(self) -> None:
        """SIGTERM: fail readiness so no new traffic comes, then let parts wind down."""
        self.draining = True
        await asyncio.gather(*(hook() for hook in self._drain_hooks))

    async def check_dependencies(
        self, serves: Iterable[str] = ("api", "gateway")
    ) -> dict[str, str]:
        """The dependencies the process needs to serve `serves` ("api", "gateway"), by name:
        "ok", or the error. Readiness fails on any other answer, so only what the component
        cannot work without is probed (guarantee 5): a gateway needs Redis, the API Redis and
        PostgreSQL, embedded mode its SQLite files. The archive (MongoDB) is never a readiness
        dependency: an archive outage delays persistence and older history, not chat."""
        ports = self.chat.ports
        probes: dict[str, Callable[[], Awaitable[object]]]
        if self.settings.backend is Backend.EMBEDDED:

            async def sqlite() -> None:
                await ports.log.last_seq("readiness-probe")  # messages.db
                await ports.accounts.get_user("readiness-probe")  # accounts.db

            probes = {"sqlite": sqlite}
        else:
            # A plain read: the log's own calls may consult the archive (a missing head).
            probes = {"redis": lambda: ports.sessions.is_active("readiness-probe")}
            if "api" in serves:
                probes["postgresql"] = lambda: ports.accounts.get_user("readiness-probe")
        checks = {}
        for name, probe in probes.items():
            try:
                await asyncio.wait_for(probe(), 3.0)
                checks[name] = "ok"
            except Exception as exc:
                checks[name] = f"{type(exc).__name__}: {exc}"
        return checks

    def start_worker(self, threads: int = 2) -> None:
        """Embedded mode: run the actors in this process, on Dramatiq worker threads."""
        self._worker = dramatiq.Worker(self.broker, worker_threads=threads, worker_timeout=100)
        self._worker.start()
        schedule = enqueue_maintenance(self.actors, self.settings.sweep_interval_s, at_once=False)
        self._tasks.append(asyncio.create_task(schedule))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._worker is not None:
            worker = self._worker
            self._worker = None
            await asyncio.to_thread(worker.stop, 5000)
        close_flags = getattr(self.queue.flags, "close", None)
        if close_flags is not None:
            await close_flags()
        await self._opened.close()
        self.broker.close()


def signing_secret(settings: Settings) -> str:
    if settings.jwt_secret:
        return settings.jwt_secret
    if settings.backend is Backend.CLUSTER:
        raise ValueError("CHAT_JWT_SECRET is required in cluster mode")
    return embedded_secret(settings.data_dir)


def build_tokens(settings: Settings, clock: Clock) -> TokenIssuer:
    secret = signing_secret(settings)
    return TokenIssuer(
        secret,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        access_ttl_s=settings.access_ttl_s,
        clock=clock,
    )


async def open_runtime(
    settings: Settings,
    *,
    clock: Clock = system_clock,
    hasher: PasswordHasher | None = None,
    archive_optional: bool = False,
) -> Runtime:
    """`archive_optional`: an API or gateway process (not a worker) starts while MongoDB is
    down, as it keeps running through such an outage (guarantee 5)."""
    loop = asyncio.get_running_loop()
    broker, queue = broker_and_queue(settings)
    if settings.backend is Backend.EMBEDDED:
        from chat.stores.embedded import open_embedded_ports

        opened: OpenPorts = await open_embedded_ports(settings, queue, clock)
    else:
        from chat.stores.cluster import open_cluster_ports

        opened = await open_cluster_ports(settings, queue, archive_optional=archive_optional)
    metrics = Metrics()
    chat = build_chat(
        timed_ports(opened.ports, metrics),
        limits=settings.limits,
        tokens=build_tokens(settings, clock),
        hasher=hasher or PasswordHasher(),
        clock=clock,
        refresh_ttl_s=settings.refresh_ttl_s,
        admins=settings.admins,
    )
    actors = register_actors(
        broker, LoopRunner(loop), chat, queue, clock, settings.retention_days, metrics
    )
    queue.bind(actors.persist.send)
    oidc = None
    if settings.oidc_issuer:
        oidc = OidcClient(
            settings.oidc_issuer,
            settings.oidc_client_id,
            settings.oidc_client_secret,
            settings.oidc_scopes,
            settings.oidc_redirect_uri,
        )
    cookie_secret = hmac.new(
        signing_secret(settings).encode(), b"cookies", hashlib.sha256
    ).hexdigest()
    return Runtime(
        settings,
        chat,
        metrics,
        broker,
        actors,
        queue,
        opened,
        oidc=oidc,
        cookie_secret=cookie_secret,
    )
