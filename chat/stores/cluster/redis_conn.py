"""The Redis client every Redis-backed store shares, and how its failures are reported.

Redis is reached either directly (`REDIS_URL`) or through Redis Sentinel
(`CHAT_REDIS_SENTINELS` + `CHAT_REDIS_SENTINEL_MASTER`): then every connection asks the
Sentinels for the current primary when it (re)connects, and a connection that finds a replica
where the primary was (`READONLY`) is dropped and retried, so clients follow a failover without a
restart. `RedisTarget` is that choice, made once from the settings and shared by the stores, the
pub/sub bus and the Dramatiq broker.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis
import redis.asyncio.sentinel as aiosentinel
import redis.sentinel
from redis.asyncio.connection import BlockingConnectionPool, ConnectionPool, parse_url
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from chat.config import Settings
from chat.stores.cluster.errors import redact, translated, unavailable

log = logging.getLogger(__name__)

REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, OSError)

CONNECT_TIMEOUT_S = 5.0
"""A Redis that does not accept a connection in this long counts as down."""
COMMAND_TIMEOUT_S = 10.0
"""No command used here blocks server-side; one that takes this long means a sick server."""
POOL_CONNECTIONS = 100
"""Connections one client keeps to the primary at most. A command that finds them all busy
waits for one (up to COMMAND_TIMEOUT_S) instead of failing: redis-py's default pool raises
MaxConnectionsError at once, which turned a burst of per-socket presence calls from thousands
of sockets on one gateway into refused sends and auths (bench/, 10 000 idle sockets)."""
RETRIES = 3
"""Reconnect-and-retry attempts for a command that hit a dropped connection. Retrying is safe:
every write here is idempotent (appends are deduplicated by client id, presence and sessions
overwrite), except a rate-limit token, where a double charge is harmless."""


@contextmanager
def redis_errors() -> Iterator[None]:
    with translated("Redis", REDIS_ERRORS):
        yield


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """Where Redis is: a URL, or Sentinels that name the primary (the URL then only gives
    credentials, database and scheme)."""

    url: str
    sentinels: tuple[tuple[str, int], ...] = ()
    master: str = "mymaster"

    @classmethod
    def of(cls, settings: Settings) -> RedisTarget:
        return cls(
            settings.redis_url,
            tuple(
                (h.strip("[]"), int(p))  # [::1]:26379 is an IPv6 address
                for h, _, p in (a.rpartition(":") for a in settings.redis_sentinels)
            ),
            settings.redis_sentinel_master,
        )

    def __str__(self) -> str:
        if not self.sentinels:
            return redact(self.url)
        where = ",".join(f"{h}:{p}" for h, p in self.sentinels)
        return f"Sentinel {where} master {self.master!r}"

    def _connection_kwargs(self, **extra: Any) -> dict[str, Any]:
        kwargs = dict(parse_url(self.url))
        kwargs.pop("host", None)
        kwargs.pop("port", None)
        # The Sentinel pool brings its own connection class; `ssl=True` picks its TLS one.
        if kwargs.pop("connection_class", None) is not None:  # set for rediss:// only
            kwargs["ssl"] = True
        return {**kwargs, **extra}

    def pool(self, **kwargs: Any) -> ConnectionPool:
        """An asyncio connection pool to the primary: at most POOL_CONNECTIONS connections,
        a command waits for a free one."""
        kwargs.setdefault("max_connections", POOL_CONNECTIONS)
        kwargs.setdefault("timeout", COMMAND_TIMEOUT_S)
        if not self.sentinels:
            pool: ConnectionPool = BlockingConnectionPool.from_url(self.url, **kwargs)
            return pool
        manager = aiosentinel.Sentinel(  # type: ignore[no-untyped-call]
            self.sentinels,
            sentinel_kwargs={"socket_connect_timeout": CONNECT_TIMEOUT_S, "socket_timeout": 2},
        )
        return _SentinelPool(  # type: ignore[no-untyped-call]
            self.master, manager, **self._connection_kwargs(**kwargs)
        )

    def sync_client(self) -> redis.Redis:
        """A blocking client to the primary, for Dramatiq's synchronous broker (which handles
        its own reconnects: no retry here, as with the broker's own `url=` client)."""
        if not self.sentinels:
            return redis.Redis.from_url(self.url, socket_connect_timeout=CONNECT_TIMEOUT_S)
        manager = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
            self.sentinels,
            sentinel_kwargs={"socket_connect_timeout": CONNECT_TIMEOUT_S, "socket_timeout": 2},
        )
        client: redis.Redis = manager.master_for(  # type: ignore[no-untyped-call]
            self.master,
            **self._connection_kwargs(socket_connect_timeout=CONNECT_TIMEOUT_S),
        )
        return client


class _SentinelPool(aiosentinel.SentinelConnectionPool, BlockingConnectionPool):
    """The Sentinel-discovered primary with BlockingConnectionPool's wait for a free connection
    (the Sentinel pool overrides neither `get_connection` nor `release`, so the blocking ones
    apply). Closing the pool also closes its connections to the Sentinels (redis-py leaves them
    open); they reconnect on the next primary lookup should the pool be used again."""

    async def disconnect(self, inuse_connections: bool = True) -> None:
        await super().disconnect(inuse_connections)
        for sentinel in self.sentinel_manager.sentinels:
            await sentinel.aclose()


def make_client(
    target: RedisTarget | str, *, max_connections: int = POOL_CONNECTIONS
) -> aioredis.Redis:
    if isinstance(target, str):
        target = RedisTarget(target)
    pool = target.pool(
        max_connections=max_connections,
        # RESP2, pinned: script replies and pub/sub frames are then plain arrays, whatever
        # default a future redis-py picks.
        protocol=2,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        socket_timeout=COMMAND_TIMEOUT_S,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), RETRIES),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
    return aioredis.Redis.from_pool(pool)  # the client owns (and closes) its pool


async def connect(target: RedisTarget | str) -> aioredis.Redis:
    """A client that has answered PING; fails fast with an error naming Redis and where."""
    if isinstance(target, str):
        target = RedisTarget(target)
    client = make_client(target)
    try:
        await client.ping()
    except REDIS_ERRORS as exc:
        await client.aclose()
        raise unavailable("Redis", exc, str(target)) from exc
    await _warn_unless_durable(client)
    return client


async def _warn_unless_durable(client: aioredis.Redis) -> None:
    """The send path acks after the append script returns; that is only "durable" when the AOF
    is fsynced on every write. Managed Redis often forbids CONFIG: then we cannot tell."""
    try:
        config = await client.config_get("append*")
    except Exception:  # CONFIG may be renamed or forbidden; that is not an error here
        return
    # Keys and values come back as bytes (the client does not decode responses).
    values = {_text(k): _text(v) for k, v in config.items()}
    appendonly, fsync = values.get("appendonly"), values.get("appendfsync")
    if appendonly != "yes" or fsync != "always":
        log.warning(
            "Redis is not configured with appendonly yes + appendfsync always "
            "(appendonly=%r appendfsync=%r): acknowledged messages can be lost on a crash",
            appendonly,
            fsync,
        )


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
