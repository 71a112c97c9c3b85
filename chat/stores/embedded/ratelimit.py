"""Token buckets in memory (one process holds every connection of a user in embedded mode)."""

from __future__ import annotations

from chat.domain.clock import Clock


class MemoryRateLimiter:
    def __init__(self, clock: Clock, max_keys: int = 100_000) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, updated_at)
        self._max_keys = max_keys

    async def allow(self, key: str, rate_per_s: float, burst: int) -> float:
        now = self._clock()
        tokens, updated = self._buckets.get(key, (float(burst), now))
        tokens = min(float(burst), tokens + (now - updated) * rate_per_s)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            wait = 0.0
        else:
            self._buckets[key] = (tokens, now)
            wait = (1.0 - tokens) / rate_per_s
        if len(self._buckets) > self._max_keys:
            # Full buckets carry no information: forget them to bound memory.
            for k in [k for k, (t, _) in self._buckets.items() if t >= burst - 1][:1000]:
                del self._buckets[k]
        return wait
