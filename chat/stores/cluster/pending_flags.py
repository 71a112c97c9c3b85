"""The persistence queue's pending flags kept in Redis, so the one-pending-job-per-conversation
rule (chat/worker/queue.py, `PendingFlags`) holds across every API and gateway process."""

from __future__ import annotations

import redis.asyncio as aioredis

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
