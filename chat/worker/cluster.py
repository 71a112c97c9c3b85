"""Cluster mode queueing: Dramatiq's RedisBroker and pending flags kept in Redis, so the
one-pending-job-per-conversation rule holds across every API and gateway process.

Dramatiq's keys live under the cluster's key prefix (`<prefix>dramatiq:<queue>`, see
chat/stores/cluster/redis_keys.py), so two clusters sharing a Redis never take each other's jobs.
Messages that exhaust their retries land in Dramatiq's dead-letter set
(`<prefix>dramatiq:<queue>.XQ`, kept a week); the periodic sweep re-queues their
conversations, so nothing stays unarchived."""

from __future__ import annotations

import dramatiq
import redis.asyncio as aioredis
from dramatiq.brokers.redis import RedisBroker

from chat.config import Settings
from chat.stores.cluster.redis_conn import RedisTarget, make_client
from chat.stores.cluster.redis_keys import RedisKeys

PENDING_TTL_S = 600  # a flag outlives no crashed enqueuer by more than this; the sweep covers it


class RedisPendingFlags:
    def __init__(self, client: aioredis.Redis, keys: RedisKeys) -> None:
        self._redis = client
        self._keys = keys

    async def claim(self, conversation_id: str) -> bool:
        key = self._keys.persist_pending(conversation_id)
        return bool(await self._redis.set(key, b"1", nx=True, ex=PENDING_TTL_S))

    async def release(self, conversation_id: str) -> None:
        await self._redis.delete(self._keys.persist_pending(conversation_id))

    async def close(self) -> None:
        await self._redis.aclose()


def cluster_broker_and_flags(settings: Settings) -> tuple[dramatiq.Broker, RedisPendingFlags]:
    keys = RedisKeys(settings.redis_key_prefix)
    target = RedisTarget.of(settings)
    # Through Sentinel, the broker's client asks for the current primary on every reconnect.
    # Its jobs need no WAIT: a job lost in a failover is found again by the periodic sweep.
    broker = RedisBroker(client=target.sync_client(), namespace=keys.dramatiq_namespace)  # type: ignore[no-untyped-call]
    # The same reconnecting, retrying client as the stores: a Redis restart must not turn a
    # durable send into an error.
    return broker, RedisPendingFlags(make_client(target), keys)
