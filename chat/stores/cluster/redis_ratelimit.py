"""Token buckets in Redis, shared by every gateway and API process.

One script reads, refills, takes a token and writes back, so concurrent requests of one user
on different pods cannot spend the same token twice. Redis's clock is the only clock, so pods
with skewed clocks agree. A bucket key expires once it would be full again: idle users cost
no memory.

The bucket's arithmetic is one Lua function (`BUCKET_LUA`) shared by two scripts: `_TAKE`
here, the `RateLimiter` port's, and the log's append script (redis_log.py), which charges a
send from the same `chat:bucket:{send:<uid>}` key in the same script as the append, so a send
is one round trip. That script passes its attempt id, kept in the bucket with the token it
took, so a re-sent run is not charged twice; `_TAKE` passes none.

A bucket is one string (`<tokens>:<ms of last use>:<attempt id>`): a take costs a GET and a
SET with its expiry (PX), and a refusal only the GET. Releases before kept a hash at
`chat:rate:{key}` (HMGET, HSET, PEXPIRE); the new name (redis_keys.py `rate`) means that on
upgrade every bucket starts full once, and while old and new processes run side by side each
charges its own bucket.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from chat.stores.cluster.redis_conn import redis_errors
from chat.stores.cluster.redis_keys import DEFAULT_KEYS, RedisKeys

BUCKET_LUA = """
-- take_token(bucket, rate per second, burst, attempt): refill the bucket by the time since its
-- last use, take one token if there is one, write it back. Returns 0 when a token was taken,
-- else the seconds until one is there (nothing taken, nothing written: the stored state gives
-- the same refill later). The bucket is one string `<tokens>:<ms of last use>:<attempt>`, so a
-- take is a GET and a SET with its expiry. With an `attempt` id, the token taken is recorded
-- with it and a second call for the same attempt takes none: a re-sent script is charged
-- once. A refusal records nothing, so its re-run is charged normally.
-- `t`: the script's own `TIME` reply when it has one (one clock read per script), else nil.
local function take_token(bucket, rate, burst, attempt, t)
  local raw = redis.call('GET', bucket)
  local tokens, at, last = nil, nil, nil
  if raw then tokens, at, last = string.match(raw, '^([^:]*):([^:]*):(.*)$') end
  if attempt and last == attempt then return 0 end
  t = t or redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
  tokens = tonumber(tokens) or burst
  at = tonumber(at) or now
  tokens = math.min(burst, tokens + math.max(0, now - at) / 1000 * rate)
  if tokens < 1 then return (1 - tokens) / rate end
  tokens = tokens - 1
  local state = string.format('%.6f:%.3f:', tokens, now) .. (attempt or '')
  -- Gone once it would be full again: an idle user costs no memory.
  redis.call('SET', bucket, state, 'PX', math.ceil((burst - tokens) / rate * 1000) + 1000)
  return 0
end
"""
"""The token bucket, as a Lua function for scripts to include: `_TAKE` below, and the log's
append script (redis_log.py), which charges a send in the same script as its append."""

# ARGV: rate per second, burst. Returns the wait in seconds as a string (Lua numbers would be
# truncated to integers in the reply).
_TAKE = (
    BUCKET_LUA
    + """
return string.format('%.6f', take_token(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])))
"""
)


class RedisRateLimiter:
    def __init__(self, client: aioredis.Redis, keys: RedisKeys = DEFAULT_KEYS) -> None:
        self._redis = client
        self._keys = keys
        self._take = client.register_script(_TAKE)

    async def allow(self, key: str, rate_per_s: float, burst: int) -> float:
        with redis_errors():
            wait = await self._take(keys=[self._keys.rate(key)], args=[rate_per_s, burst])
        return float(wait)
