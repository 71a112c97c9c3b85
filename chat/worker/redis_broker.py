"""Dramatiq's RedisBroker, polling less after each job.

Dramatiq's Redis consumer polls its queue (one `EVALSHA` of its dispatch script, which also
records the worker's heartbeat: three Redis commands) and, while it finds nothing, sleeps
5-10 ms, then 10-20, 20-40, ... up to the worker timeout, starting over after every message it
finds. A worker whose jobs come every second or so (a persistence chain that paused and
started again, chat/worker/actors.py) thus polls each queue seven or eight times between two
jobs, most of it in the first 100 ms. Its jobs never need picking up that fast (a batch job
waits out a one second linger anyway, and the linger counts from when it was sent, so pickup
time is part of it), so the first sleep after a message here is 80-160 ms, and the doubling
goes on from there: three or four polls between two jobs. An idle queue is polled as before,
every 50-100 % of the worker timeout.
"""

from __future__ import annotations

from typing import Any

from dramatiq.brokers.redis import RedisBroker, _RedisConsumer

FIRST_BACKOFF_EXPONENT = 4
"""Dramatiq's backoff is 5 ms * 2**misses (times 1-2, jitter): 4 makes the first sleep 80-160 ms."""


class _PatientConsumer(_RedisConsumer):
    def __next__(self) -> Any:
        # `misses` counts empty fetches since the last message (Dramatiq resets it to 0 when it
        # hands one out) and picks the next sleep; only the sleep after an empty fetch is
        # longer, a queued job is still fetched at the next poll.
        self.misses = max(self.misses, FIRST_BACKOFF_EXPONENT)
        return super().__next__()  # type: ignore[no-untyped-call]


class PatientRedisBroker(RedisBroker):
    @property
    def consumer_class(self) -> type[_RedisConsumer]:
        return _PatientConsumer
