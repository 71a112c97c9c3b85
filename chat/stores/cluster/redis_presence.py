"""Presence in Redis: each user's live connections in a sorted set scored by expiry time.

Keys per user (one slot; built by redis_keys.py, shown with the default prefix):
`chat:presence:{uid}:conns` (connection -> expires at, ms), `chat:presence:{uid}:state`
(connection -> online|idle), `chat:presence:{uid}:seen` (last seen, ms). A sorted set rather
than one TTL key per connection: counting a user's connections then
needs no SCAN, and expiry is still enforced by time, not by anyone remembering to clean up; the
set and hash themselves carry a key TTL, so a user whose gateway crashed leaves nothing behind.

Every operation first drops expired connections (recording their expiry as last seen), in the
same script, using Redis's clock so every gateway agrees on "now".
"""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis

from chat.domain.models import Presence, PresenceState
from chat.stores.cluster.redis_conn import redis_errors
from chat.stores.cluster.redis_keys import DEFAULT_KEYS, RedisKeys

_PRELUDE = """
local conns, states, seen = KEYS[1], KEYS[2], KEYS[3]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local gone = redis.call('ZRANGEBYSCORE', conns, '-inf', now, 'WITHSCORES')
if #gone > 0 then
  local last = tonumber(redis.call('GET', seen) or '0')
  for i = 1, #gone, 2 do
    redis.call('HDEL', states, gone[i])
    last = math.max(last, tonumber(gone[i + 1]))
  end
  redis.call('ZREMRANGEBYSCORE', conns, '-inf', now)
  redis.call('SET', seen, string.format('%d', last))
end
local function keep_alive()
  local newest = redis.call('ZRANGE', conns, -1, -1, 'WITHSCORES')
  if #newest > 0 then
    redis.call('PEXPIREAT', conns, newest[2])
    redis.call('PEXPIREAT', states, newest[2])
  end
end
"""

# ARGV: connection, state, ttl ms. Returns the live connection count.
_TOUCH = (
    _PRELUDE
    + """
redis.call('ZADD', conns, now + tonumber(ARGV[3]), ARGV[1])
redis.call('HSET', states, ARGV[1], ARGV[2])
redis.call('SET', seen, string.format('%d', now))
keep_alive()
return redis.call('ZCARD', conns)
"""
)

# The periodic refresh, the gateway's most frequent presence call (every connection, every
# heartbeat interval): four commands plus the call, instead of nine. No expiry sweep and no
# last-seen write: connect, disconnect and every read sweep expired connections and record
# their expiry as last seen, and a live connection's last seen is "now" by definition. The
# state stays as the client set it; only a connection swept meanwhile (it outlived its TTL) is
# added back, online. `GT`: a key TTL never moves earlier (another connection may live longer).
# ARGV: connection, ttl ms.
_REFRESH = """
local conns, states = KEYS[1], KEYS[2]
local t = redis.call('TIME')
local expires = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[2])
if redis.call('ZADD', conns, expires, ARGV[1]) == 1 then
  redis.call('HSET', states, ARGV[1], 'online')
  -- Maybe new keys, with no TTL yet: `GT` alone would leave them without one for good.
  redis.call('PEXPIREAT', conns, expires, 'NX')
  redis.call('PEXPIREAT', states, expires, 'NX')
end
redis.call('PEXPIREAT', conns, expires, 'GT')
redis.call('PEXPIREAT', states, expires, 'GT')
return 0
"""

# ARGV: connection. Returns the remaining live connection count.
_DISCONNECT = (
    _PRELUDE
    + """
if redis.call('ZREM', conns, ARGV[1]) == 1 then
  redis.call('SET', seen, string.format('%d', now))
end
redis.call('HDEL', states, ARGV[1])
return redis.call('ZCARD', conns)
"""
)

# Returns {live connections, of which online, last seen or false}.
_GET = (
    _PRELUDE
    + """
local online = 0
for _, s in ipairs(redis.call('HVALS', states)) do
  if s == 'online' then online = online + 1 end
end
return {redis.call('ZCARD', conns), online, redis.call('GET', seen)}
"""
)


def _ms(ttl_s: float) -> int:
    return max(1, round(ttl_s * 1000))


class RedisPresence:
    def __init__(self, client: aioredis.Redis, keys: RedisKeys = DEFAULT_KEYS) -> None:
        self._redis = client
        self._keys = keys
        self._touch = client.register_script(_TOUCH)
        self._refresh = client.register_script(_REFRESH)
        self._disconnect = client.register_script(_DISCONNECT)
        self._get = client.register_script(_GET)

    async def connect(self, user_id: str, connection_id: str, ttl_s: float) -> int:
        with redis_errors():
            count = await self._touch(
                keys=self._keys.presence(user_id),
                args=[connection_id, PresenceState.ONLINE.value, _ms(ttl_s)],
            )
        return int(count)

    async def heartbeat(
        self, user_id: str, connection_id: str, state: PresenceState | None, ttl_s: float
    ) -> None:
        keys = self._keys.presence(user_id)
        with redis_errors():
            if state is None:
                await self._refresh(keys=keys[:2], args=[connection_id, _ms(ttl_s)])
            else:
                await self._touch(keys=keys, args=[connection_id, state.value, _ms(ttl_s)])

    async def disconnect(self, user_id: str, connection_id: str) -> int:
        with redis_errors():
            return int(
                await self._disconnect(keys=self._keys.presence(user_id), args=[connection_id])
            )

    async def get(self, user_ids: Sequence[str]) -> dict[str, Presence]:
        if not user_ids:
            return {}
        with redis_errors():
            # One script per user (each user is its own slot); one round trip for all of them.
            async with self._redis.pipeline(transaction=False) as pipe:
                for uid in user_ids:
                    await self._get(keys=self._keys.presence(uid), client=pipe)
                replies = await pipe.execute()
        found = {}
        for uid, (live, online, seen) in zip(user_ids, replies, strict=True):
            if int(live) == 0:
                state = PresenceState.OFFLINE
            elif int(online) > 0:
                state = PresenceState.ONLINE
            else:
                state = PresenceState.IDLE
            found[uid] = Presence(uid, state, int(seen) if seen is not None else None)
        return found
