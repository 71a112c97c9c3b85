"""Cluster mode: Redis (hot log, pub/sub, sessions, presence, rate limits), PostgreSQL (accounts,
conversations) and MongoDB (the message archive), behind the same ports as embedded mode.

`open_cluster_ports` connects to all three and fails fast with an error naming the one that is
unreachable, so a pod that cannot work never reports ready.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # no stubs; see docs/cluster.md
import redis.asyncio as aioredis
from pymongo import AsyncMongoClient

from chat.config import Settings
from chat.domain.chat import Ports
from chat.domain.errors import Unavailable
from chat.domain.ports import JobQueue
from chat.stores.cluster import redis_conn
from chat.stores.cluster.migrations import migrate, migrate_postgres
from chat.stores.cluster.mongo_archive import MongoArchive
from chat.stores.cluster.mongo_conn import connect_mongo, make_client
from chat.stores.cluster.postgres_accounts import PostgresAccountStore
from chat.stores.cluster.postgres_conversations import PostgresConversationStore
from chat.stores.cluster.postgres_pool import create_pool
from chat.stores.cluster.redis_bus import RedisBus
from chat.stores.cluster.redis_keys import RedisKeys
from chat.stores.cluster.redis_log import RedisEventLog
from chat.stores.cluster.redis_presence import RedisPresence
from chat.stores.cluster.redis_ratelimit import RedisRateLimiter
from chat.stores.cluster.redis_sessions import RedisSessionStore
from chat.stores.cluster.redis_shared_link import SharedLink

__all__ = ["ClusterPorts", "migrate", "open_cluster_ports"]

log = logging.getLogger(__name__)


@dataclass
class ClusterPorts:
    ports: Ports
    _clients: contextlib.AsyncExitStack

    async def close(self) -> None:
        """Close every client, newest first; safe to call twice."""
        await self._clients.aclose()


async def _quietly(close: Callable[[], Awaitable[Any]]) -> None:
    """A client that fails to close must not keep the others open."""
    with contextlib.suppress(Exception):
        await close()


async def open_cluster_ports(
    settings: Settings,
    queue: JobQueue,
    *,
    migrate_schema: bool = True,
    archive_optional: bool = False,
) -> ClusterPorts:
    """Connect to Redis, PostgreSQL and MongoDB and build every port.

    With `migrate_schema` (the default) pending migrations are applied first: idempotent and
    serialised by an advisory lock, so every pod may do it; the operator's migration Job runs
    the same function before a version rolls out, which leaves nothing to do here.

    With `archive_optional` (API and gateway processes) an unreachable MongoDB is a warning, not
    a failure: the client connects when the server is back, history comes from the log
    meanwhile, and MongoDB's migrations are left to the migration Job and the workers (which
    still fail fast without it).
    """
    # Until the ports are built, leaving the block (an error) closes what was opened so far.
    async with contextlib.AsyncExitStack() as clients:
        target = redis_conn.RedisTarget.of(settings)
        client: aioredis.Redis = await redis_conn.connect(target)
        clients.push_async_callback(_quietly, client.aclose)
        pool: asyncpg.Pool = await create_pool(settings.postgres_dsn)
        clients.push_async_callback(_quietly, pool.close)
        archive_up = True
        try:
            mongo: AsyncMongoClient[dict[str, Any]] = await connect_mongo(settings.mongodb_uri)
        except Unavailable as exc:
            if not archive_optional:
                raise
            log.warning("%s; starting without it (history from the log meanwhile)", exc.message)
            mongo, archive_up = make_client(settings.mongodb_uri), False
        clients.push_async_callback(_quietly, mongo.close)
        if migrate_schema and archive_up:
            await migrate(settings)
        elif migrate_schema:
            await migrate_postgres(settings.postgres_dsn)
        archive = MongoArchive(mongo[settings.mongodb_database])
        keys = RedisKeys(settings.redis_key_prefix)
        bus = RedisBus(client, target, keys)
        clients.push_async_callback(_quietly, bus.close)
        shared = SharedLink(client)  # closed before the client (the stack unwinds in reverse)
        clients.push_async_callback(_quietly, shared.aclose)
        ports = Ports(
            accounts=PostgresAccountStore(pool),
            conversations=PostgresConversationStore(pool),
            log=RedisEventLog(
                client,
                archive.floor,
                archive.event,
                keys=keys,
                min_replicas=settings.redis_replicas_required,
                wait_timeout_ms=settings.redis_wait_timeout_ms,
                shared=shared,
            ),
            archive=archive,
            bus=bus,
            sessions=RedisSessionStore(client, keys),
            presence=RedisPresence(client, keys),
            limiter=RedisRateLimiter(client, keys),
            queue=queue,
        )
        return ClusterPorts(ports, clients.pop_all())
