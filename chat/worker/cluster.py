"""Cluster mode queueing: Dramatiq's RedisBroker and pending flags kept in Redis, so the
one-pending-job-per-conversation rule holds across every API and gateway process.

Messages that exhaust their retries land in Dramatiq's dead-letter set (`dramatiq:<queue>.XQ`,
kept a week); the periodic sweep re-queues their conversations, so nothing stays unarchived."""

from __future__ import annotations

import dramatiq
import redis.asyncio as aioredis
from dramatiq.brokers.redis import RedisBroker

from chat.config import Settings
from chat.stores.cluster.redis_conn import make_client

PENDING_TTL_S = 600  # a flag outlives no crashed enqueuer by more than this; the sweep covers it


class RedisPendingFlags:
    def __init__(self, client: aioredis.Redis) -> None:
        self._redis = client

    async def claim(self, conversation_id: str) -> bool:
        key = f"persist-pending:{{{conversation_id}}}"
        return bool(await self._redis.set(key, b"1", nx=True, ex=PENDING_TTL_S))

    async def release(self, conversation_id: str) -> None:
        await self._redis.delete(f"persist-pending:{{{conversation_id}}}")

    async def close(self) -> None:
        await self._redis.aclose()


def cluster_broker_and_flags(settings: Settings) -> tuple[dramatiq.Broker, RedisPendingFlags]:
    broker = RedisBroker(url=settings.redis_url)  # type: ignore[no-untyped-call]
    # The same reconnecting, retrying client as the stores: a Redis restart must not turn a
    # durable send into an error.
    return broker, RedisPendingFlags(make_client(settings.redis_url))
