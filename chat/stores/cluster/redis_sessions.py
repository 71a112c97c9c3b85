"""Refresh-token families in Redis. Only token hashes are stored.

Keys: `chat:session:{fid}` hash (user, token, revoked, and `prev`, `rotated_at` of the latest
rotation), `chat:session:{fid}:spent` set of rotated hashes (both in the family's slot, so one
script sees both), `chat:user_sessions:{uid}` set of the user's family ids (another slot: kept
up to date outside the scripts; a stale id in it is harmless because revoking a missing family
is a no-op). Everything expires `ttl_s` after the family was last used, as refresh tokens do.
(Names built by redis_keys.py; `chat:` is the default prefix.)
"""

from __future__ import annotations

import redis.asyncio as aioredis

from chat.domain.models import RefreshOutcome
from chat.stores.cluster.redis_conn import redis_errors
from chat.stores.cluster.redis_keys import DEFAULT_KEYS, RedisKeys

# Theft detection is atomic: the check of the presented hash and the rotation (or the revocation
# on reuse) happen in one script, so two concurrent refreshes with the same token cannot both win.
# `prev` and `rotated_at` (ms, Redis's clock) remember the latest rotation: presenting its old
# token again within the grace window (ARGV[4], ms), asking for the same successor, is a retry
# (reply 2) and changes nothing; any other spent token revokes the family (reply 1). A window of
# 0 allows no retry at all, even one within the same millisecond.
_ROTATE = """
local h = redis.call('HMGET', KEYS[1], 'user', 'token', 'revoked', 'prev', 'rotated_at')
if not h[1] or h[3] == '1' then return {false, 0} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if h[2] == ARGV[1] then
  redis.call('SADD', KEYS[2], ARGV[1])
  redis.call('HSET', KEYS[1], 'token', ARGV[2], 'prev', ARGV[1], 'rotated_at', now)
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
  return {h[1], 0}
end
local grace = tonumber(ARGV[4])
if grace > 0 and h[4] == ARGV[1] and h[2] == ARGV[2] and now - tonumber(h[5]) <= grace then
  return {h[1], 2}
end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], 'revoked', '1')
  return {h[1], 1}
end
return {false, 0}
"""

# Returns 1 when an active family was revoked by this call.
_REVOKE = """
local revoked = redis.call('HGET', KEYS[1], 'revoked')
if not revoked or revoked == '1' then return 0 end
redis.call('HSET', KEYS[1], 'revoked', '1')
return 1
"""


class RedisSessionStore:
    def __init__(self, client: aioredis.Redis, keys: RedisKeys = DEFAULT_KEYS) -> None:
        self._redis = client
        self._keys = keys
        self._rotate = client.register_script(_ROTATE)
        self._revoke = client.register_script(_REVOKE)

    async def create(self, family_id: str, user_id: str, token_hash: str, ttl_s: int) -> None:
        family, spent = self._keys.session(family_id)
        with redis_errors():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(spent)
                pipe.hset(family, mapping={"user": user_id, "token": token_hash, "revoked": "0"})
                pipe.expire(family, ttl_s)
                await pipe.execute()
            await self._track(user_id, family_id, ttl_s)

    async def _track(self, user_id: str, family_id: str, ttl_s: int) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.sadd(self._keys.user_sessions(user_id), family_id)
            pipe.expire(self._keys.user_sessions(user_id), ttl_s, nx=True)
            pipe.expire(self._keys.user_sessions(user_id), ttl_s, gt=True)
            await pipe.execute()

    async def rotate(
        self, family_id: str, presented_hash: str, new_hash: str, ttl_s: int, *, grace_s: float = 0
    ) -> RefreshOutcome:
        with redis_errors():
            user, verdict = await self._rotate(
                keys=self._keys.session(family_id),
                args=[presented_hash, new_hash, ttl_s, int(grace_s * 1000)],
            )
        if user is None:
            return RefreshOutcome(None)
        uid = user.decode()
        if verdict == 0:
            with redis_errors():
                await self._track(uid, family_id, ttl_s)
        return RefreshOutcome(uid, reused=verdict == 1, retried=verdict == 2)

    async def is_active(self, family_id: str) -> bool:
        with redis_errors():
            revoked = await self._redis.hget(self._keys.session(family_id)[0], "revoked")
        return revoked == b"0"

    async def revoke(self, family_id: str) -> None:
        with redis_errors():
            await self._revoke(keys=self._keys.session(family_id)[:1])

    async def revoke_user(self, user_id: str) -> list[str]:
        with redis_errors():
            raw: set[bytes] = await self._redis.smembers(self._keys.user_sessions(user_id))  # type: ignore[assignment]
            families = sorted(f.decode() for f in raw)
            revoked = []
            for fid in families:
                if await self._revoke(keys=self._keys.session(fid)[:1]):
                    revoked.append(fid)
        return revoked
