"""Settings in; the process's stores, domain services, broker, actors and (in embedded mode)
in-process worker out. The one place where implementations are chosen (`CHAT_BACKEND`).

`Runtime` is the composition root's own record of what it built, so it can drain and close it
in order. Nothing below chat.app sees it: handlers and the gateway get the parts they use
(chat/app/http.py)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import dramatiq

from chat.app.queueing import broker_and_queue
from chat.app.readiness import Readiness
from chat.config import Backend, Settings, embedded_secret
from chat.domain.chat import Chat, build_chat
from chat.domain.clock import Clock, system_clock
from chat.domain.membership import MembershipCache
from chat.domain.passwords import PasswordHasher
from chat.domain.tokens import TokenIssuer
from chat.metrics import Metrics
from chat.oidc.client import OidcClient
from chat.store_metrics import timed_ports
from chat.worker.actors import Actors, register_actors
from chat.worker.queue import DramatiqQueue
from chat.worker.runner import LoopRunner
from chat.worker.schedule import enqueue_maintenance

if TYPE_CHECKING:
    from chat.domain.chat import Ports
    from chat.ws.hub import Gateway


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
    readiness: Readiness
    _resources: contextlib.AsyncExitStack
    """Closes the stores and the broker, newest first."""
    oidc: OidcClient | None = None
    cookie_secret: str = ""
    """Signs short-lived browser cookies (the OIDC login state); derived from the JWT key."""
    gateway: Gateway | None = None
    """The process's one WebSocket hub, built when /ws is first mounted (chat/app/http.py)."""
    membership: MembershipCache = field(default_factory=MembershipCache)
    """`chat.messaging`'s cache of "is a member"; inert (nobody watched, every check asks the
    store) unless this process serves /ws, whose hub fills and invalidates it."""
    draining: bool = False
    _worker: dramatiq.Worker | None = None
    _stopping: threading.Event = field(default_factory=threading.Event)
    """Set when the process stops: batch jobs stop waiting out their linger (actors.py)."""
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _drain_hooks: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def on_drain(self, hook: Callable[[], Awaitable[None]]) -> None:
        self._drain_hooks.append(hook)

    async def drain(self) -> None:
        """SIGTERM: fail readiness so no new traffic comes, then let parts wind down."""
        self.draining = True
        await asyncio.gather(*(hook() for hook in self._drain_hooks))

    def start_worker(self, threads: int = 2) -> None:
        """Embedded mode: run the actors in this process, on Dramatiq worker threads."""
        self._worker = dramatiq.Worker(self.broker, worker_threads=threads, worker_timeout=100)
        self._worker.start()
        schedule = enqueue_maintenance(self.actors, self.settings.sweep_interval_s, at_once=False)
        self._tasks.append(asyncio.create_task(schedule))

    def stop_lingering(self) -> None:
        """A stopping worker archives what its jobs hold now instead of waiting out lingers."""
        self._stopping.set()

    async def close(self) -> None:
        self.stop_lingering()
        for task in self._tasks:
            task.cancel()
        if self._worker is not None:
            worker = self._worker
            self._worker = None
            await asyncio.to_thread(worker.stop, 5000)
        await self._resources.aclose()


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


def build_oidc(settings: Settings) -> OidcClient | None:
    if not settings.oidc_issuer:
        return None
    return OidcClient(
        settings.oidc_issuer,
        settings.oidc_client_id,
        settings.oidc_client_secret,
        settings.oidc_scopes,
        settings.oidc_redirect_uri,
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
    # Until the end of the block, an error closes whatever was opened so far.
    async with contextlib.AsyncExitStack() as resources:
        broker, queue = broker_and_queue(settings)
        resources.callback(broker.close)
        opened: OpenPorts
        if settings.backend is Backend.EMBEDDED:
            from chat.stores.embedded import open_embedded_ports

            opened = await open_embedded_ports(settings, queue, clock)
        else:
            # Imported here: embedded mode never loads the cluster drivers.
            from chat.stores.cluster import open_cluster_ports

            opened = await open_cluster_ports(settings, queue, archive_optional=archive_optional)
        resources.push_async_callback(opened.close)
        metrics = Metrics()
        membership = MembershipCache()
        stopping = threading.Event()
        chat = build_chat(
            timed_ports(opened.ports, metrics),
            limits=settings.limits,
            tokens=build_tokens(settings, clock),
            hasher=hasher or PasswordHasher(),
            clock=clock,
            refresh_ttl_s=settings.refresh_ttl_s,
            admins=settings.admins,
            membership=membership,
            # One process holds the log and the archive: a search archives its conversations
            # first, so it finds a message right after its ack (docs/http.md).
            search_catches_up=settings.backend is Backend.EMBEDDED,
        )
        actors = register_actors(
            broker,
            LoopRunner(loop),
            chat,
            clock,
            settings.retention_days,
            metrics,
            linger_ms=lambda: queue.linger_ms,
            stopping=stopping,
        )
        queue.bind(actors.persist)
        cookie_secret = hmac.new(
            signing_secret(settings).encode(), b"cookies", hashlib.sha256
        ).hexdigest()
        oidc = build_oidc(settings)
        opened_resources = resources.pop_all()  # from here on, Runtime.close closes them
    return Runtime(
        settings,
        chat,
        metrics,
        broker,
        actors,
        queue,
        Readiness(settings.backend, chat.ports),
        opened_resources,
        oidc=oidc,
        cookie_secret=cookie_secret,
        membership=membership,
        _stopping=stopping,
    )
