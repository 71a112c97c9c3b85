"""The Redis client every Redis-backed store shares, and how its failures are reported."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from chat.stores.cluster.errors import redact, translated, unavailable

log = logging.getLogger(__name__)

REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, OSError)

CONNECT_TIMEOUT_S = 5.0
"""A Redis that does not accept a connection in this long counts as down."""
COMMAND_TIMEOUT_S = 10.0
"""No command used here blocks server-side; one that takes this long means a sick server."""
RETRIES = 3
"""Reconnect-and-retry attempts for a command that hit a dropped connection. Retrying is safe:
every write here is idempotent (appends are deduplicated by client id, presence and sessions
overwrite), except a rate-limit token, where a double charge is harmless."""


@contextmanager
def redis_errors() -> Iterator[None]:
    with translated("Redis", REDIS_ERRORS):
        yield


def make_client(url: str) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        url,
        # RESP2, pinned: script replies and pub/sub frames are then plain arrays, whatever
        # default a future redis-py picks.
        protocol=2,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        socket_timeout=COMMAND_TIMEOUT_S,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), RETRIES),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )


async def connect(url: str) -> aioredis.Redis:
    """A client that has answered PING; fails fast with an error naming Redis and its URL."""
    client = make_client(url)
    try:
        await client.ping()
    except REDIS_ERRORS as exc:
        await client.aclose()
        raise unavailable("Redis", exc, redact(url)) from exc
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
