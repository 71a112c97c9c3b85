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
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import redis
import redis.asyncio as aioredis
import redis.asyncio.sentinel as aiosentinel
import redis.sentinel
from redis.asyncio.connection import (
    AbstractConnection,
    BlockingConnectionPool,
    ConnectionPool,
    parse_url,
)
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.connection import HiredisRespSerializer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.utils import HIREDIS_AVAILABLE

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
        a command waits for a free one; a write on a connection the peer reset fails as
        redis-py's ConnectionError on any event loop (`_ClosedTransportWrite`)."""
        kwargs.setdefault("max_connections", POOL_CONNECTIONS)
        kwargs.setdefault("timeout", COMMAND_TIMEOUT_S)
        pool: ConnectionPool
        if not self.sentinels:
            pool = BlockingConnectionPool.from_url(self.url, **kwargs)
        else:
            manager = aiosentinel.Sentinel(  # type: ignore[no-untyped-call]
                self.sentinels,
                sentinel_kwargs={"socket_connect_timeout": CONNECT_TIMEOUT_S, "socket_timeout": 2},
            )
            pool = _SentinelPool(  # type: ignore[no-untyped-call]
                self.master, manager, **self._connection_kwargs(**kwargs)
            )
        # The URL's scheme (and Sentinel) picked the connection class; keep it, add the guard.
        pool.connection_class = _closed_write_guarded(pool.connection_class)
        return pool

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


class _ClosedTransportWrite(AbstractConnection):
    """A write on a connection whose transport the event loop already closed (the peer reset
    it) raises redis-py's ConnectionError, as it does on asyncio's loop, so redis-py's retry
    reconnects and `redis_errors` reports an outage as `Unavailable`.

    asyncio's selector transport drops such a write and the drain after it raises
    ConnectionResetError, which redis-py translates; uvloop's transport raises
    `RuntimeError: unable to perform operation on <TCPTransport closed=True ...>; the handler is
    closed` (MagicStack/uvloop#506), which redis-py 8.1 lets through: under TCP resets a gateway
    on uvloop answered `internal` (a new connection's first handshake write drew the reset, the
    second met the closed transport). Only a RuntimeError while the transport written to is
    closing is translated; any other RuntimeError is a bug and goes through. redis-py's own
    guard (redis/redis-py#4288, after 8.1) makes this redundant once it is released and pinned.
    """

    __slots__ = ()

    async def send_packed_command(
        self, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        if not self.is_connected:
            # What redis-py's send_packed_command does first: connect here instead, so the
            # transport this write goes to is known.
            await self.connect_check_health(check_health=False)
        writer = self._writer
        transport = writer.transport if writer is not None else None
        try:
            await super().send_packed_command(command, check_health)
        except RuntimeError as exc:
            if transport is None or not transport.is_closing():
                raise
            # redis-py has dropped the connection (it disconnects on any error in a write).
            raise RedisConnectionError(
                f"Error while writing to {self._host_error()}: the connection was closed"
            ) from exc


class _HiredisPacking(AbstractConnection):
    """Commands packed by hiredis, in C, with redis-py's own `HiredisRespSerializer`, as its
    synchronous client does whenever hiredis is installed: the asyncio client still packs them
    in Python (redis/redis-py#4176). The append script's call, once per send, packs in 3.5 µs
    instead of 8.5 µs (issue 14); the bytes are the same (tests/cluster/test_redis_packing.py)."""

    __slots__ = ()

    def pack_command(self, *args: Any) -> list[bytes]:
        return _HIREDIS_PACKER.pack(*args)  # type: ignore[no-any-return]


_HIREDIS_PACKER = HiredisRespSerializer()
_MIXINS: tuple[type[AbstractConnection], ...] = (
    (_ClosedTransportWrite, _HiredisPacking) if HIREDIS_AVAILABLE else (_ClosedTransportWrite,)
)


def _closed_write_guarded(cls: type[AbstractConnection]) -> type[AbstractConnection]:
    """`cls` (Connection, SSLConnection, a Sentinel-managed one...) with `_ClosedTransportWrite`
    (and `_HiredisPacking`, hiredis being installed) in front of it (one class per pool: a
    process builds a handful of pools)."""
    if issubclass(cls, _ClosedTransportWrite):
        return cls
    return cast(type[AbstractConnection], type(cls.__name__, (*_MIXINS, cls), {}))


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
