"""The persistence signal's side of the hot log in Redis (chat/domain/ports.py, `EventLog`;
chat/domain/persistence.py): taking dirty conversations, putting them back, and the one job
schedule. The append script in redis_log.py writes both keys in the append's own atomic step.

Keys (redis_keys.py `persist`): `<prefix>persist:{dirty}` sorted set (conversation -> ms ts of
the append that made it dirty) and `<prefix>persist:{dirty}:scheduled` (the scheduled batch
job's token, with a TTL). Atomicity: `ZPOPMIN` hands each entry to one caller; the end of a job
checks the set and releases the schedule in one script, so no append falls in between.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import redis.asyncio as aioredis

from chat.stores.cluster.redis_conn import redis_errors
from chat.stores.cluster.redis_keys import RedisKeys
from chat.stores.cluster.redis_log_scripts import TAKE_DIRTY

SCHEDULE_TTL_S = 300
"""The persistence schedule outlives a job lost with a crashed process by at most this; the
sweep takes it over sooner (chat/domain/persistence.py)."""

_PERSIST_CONTINUE = """
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then return 0 end
if redis.call('ZCARD', KEYS[1]) == 0 then
  if holder then redis.call('DEL', KEYS[2]) end
  return 0
end
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
return 1
"""

_RELEASE_PERSIST = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisPersistSignal:
    """The base of `RedisEventLog` that keeps its persistence signal."""

    _redis: aioredis.Redis
    _keys: RedisKeys

    def _signal_init(self, client: aioredis.Redis) -> None:
        self._continue = client.register_script(_PERSIST_CONTINUE)
        self._take = client.register_script(TAKE_DIRTY)
        self._release = client.register_script(_RELEASE_PERSIST)

    async def take_dirty(self, limit: int) -> list[str]:
        """`ZPOPMIN`, clearing each popped conversation's head `dirty` field in the same script
        (redis_log_scripts.py `TAKE_DIRTY`). `mark_dirty` leaves the field alone: a
        conversation in the set whose field is unset only costs its next append a ZADD that
        finds it there; the reverse (set but not in the set) would skip its appends' signal."""
        before, _, after = self._keys.log("\x00")[0].partition("\x00")
        with redis_errors():
            popped: list[bytes] = await self._take(
                keys=[self._keys.persist[0]], args=[limit, before, after]
            )
        return [member.decode() for member in popped]

    async def mark_dirty(self, conversation_ids: Sequence[str]) -> None:
        if not conversation_ids:
            return
        now = int(time.time() * 1000)
        with redis_errors():
            await self._redis.zadd(
                self._keys.persist[0], dict.fromkeys(conversation_ids, now), nx=True
            )

    async def claim_persist(self, token: str, *, take_over: bool) -> bool:
        with redis_errors():
            done = await self._redis.set(
                self._keys.persist[1], token, ex=SCHEDULE_TTL_S, nx=not take_over
            )
        return bool(done)

    async def persist_continue(self, token: str) -> bool:
        with redis_errors():
            return bool(await self._continue(keys=self._keys.persist, args=[token, SCHEDULE_TTL_S]))

    async def release_persist(self, token: str) -> None:
        with redis_errors():
            await self._release(keys=self._keys.persist[1:], args=[token])
