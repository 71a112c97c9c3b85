"""Token buckets in Redis, shared by every gateway and API process.

One script reads, refills, takes a token and writes back, so concurrent requests of one user
on different pods cannot spend the same token twice. Redis's clock is the only clock, so pods
with skewed clocks agree. A bucket key expires once it would be full again: idle users cost
no memory.

The bucket's arithmetic is one Lua function (`BUCKET_LUA`) shared by two scripts: `_TAKE`
here, the `RateLimiter` port's, and the log's append script (redis_log.py), which charges a
send from the same `chat:rate:{send:<uid>}` key in the same script as the append, so a send is
one round trip. That script passes its attempt id, kept in the bucket's field `a` with the
token it took, so a re-sent run is not charged twice; `_TAKE` passes none.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from chat.stores.cluster.redis_conn import redis_errors
from chat.stores.cluster.redis_keys import DEFAULT_KEYS, RedisKeys

BUCKET_LUA = """
-- take_token(bucket, rate per second, burst, attempt): refill the bucket by the time since its
-- last use, take one token if there is one, write it back. Returns 0 when a token was taken,
-- else the seconds until one is there (nothing taken). With an `attempt` id, the token taken
-- is recorded with it (field `a`) and a second call for the same attempt takes none: a re-sent
-- script is charged once. A refusal records nothing, so its re-run is charged normally.
-- `t`: the script's own `TIME` reply when it has one (one clock read per script), else nil.
local function take_token(bucket, rate, burst, attempt, t)
  local h = redis.call('HMGET', bucket, 'tokens', 'at', 'a')
  if attempt and h[3] == attempt then return 0 end
  t = t or redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
  local tokens = tonumber(h[1]) or burst
  local at = tonumber(h[2]) or now
  tokens = math.min(burst, tokens + math.max(0, now - at) / 1000 * rate)
  local wait = 0
  if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
  local state = {'tokens', string.format('%.6f', tokens), 'at', string.format('%.3f', now)}
  if attempt and wait == 0 then
    state[5], state[6] = 'a', attempt
  end
  redis.call('HSET', bucket, unpack(state))
  redis.call('PEXPIRE', bucket, math.ceil((burst - tokens) / rate * 1000) + 1000)
  return wait
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
