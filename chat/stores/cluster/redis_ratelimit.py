"""Token buckets in Redis, shared by every gateway and API process.

One script reads, refills, takes a token and writes back, so concurrent requests of one user
on different pods cannot spend the same token twice. Redis's clock is the only clock, so pods
with skewed clocks agree. A bucket key expires once it would be full again: idle users cost
no memory.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from chat.stores.cluster.redis_conn import redis_errors
from chat.stores.cluster.redis_keys import DEFAULT_KEYS, RedisKeys

# ARGV: rate per second, burst. Returns the wait in seconds as a string (Lua numbers would be
# truncated to integers in the reply).
_TAKE = """
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local h = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(h[1]) or burst
local at = tonumber(h[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) / 1000 * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens),
  'at', string.format('%.3f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return string.format('%.6f', wait)
"""


class RedisRateLimiter:
    def __init__(self, client: aioredis.Redis, keys: RedisKeys = DEFAULT_KEYS) -> None:
        self._redis = client
        self._keys = keys
        self._take = client.register_script(_TAKE)

    async def allow(self, key: str, rate_per_s: float, burst: int) -> float:
        with redis_errors():
            wait = await self._take(keys=[self._keys.rate(key)], args=[rate_per_s, burst])
        return float(wait)
