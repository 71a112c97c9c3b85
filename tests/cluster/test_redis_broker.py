"""The worker's Dramatiq broker polls a queue less right after a job
(chat/worker/redis_broker.py), on a real Redis."""

from __future__ import annotations

import uuid
from dataclasses import replace

import dramatiq

from chat.app.queueing import cluster_broker
from chat.config import Settings
from chat.worker.redis_broker import FIRST_BACKOFF_EXPONENT


def test_the_first_sleep_after_a_job_is_the_longer_one(cluster_settings: Settings) -> None:
    broker = cluster_broker(replace(cluster_settings, redis_key_prefix=f"t{uuid.uuid4().hex}:"))
    try:

        @dramatiq.actor(broker=broker, queue_name="probe", actor_name="probe")
        def probe() -> None: ...

        probe.send()
        consumer = broker.consume("probe", prefetch=1, timeout=1000)
        try:
            message = next(consumer)
            assert message is not None and message.actor_name == "probe"
            consumer.ack(message)
            # One empty fetch, then a sleep picked by the miss count: 80-160 ms, where
            # Dramatiq's own consumer starts at 5-10 ms (misses 1 after it).
            assert next(consumer) is None
            assert consumer.misses == FIRST_BACKOFF_EXPONENT + 1
            # A job queued meanwhile is fetched at the next poll, whatever the count.
            probe.send()
            message = next(consumer)
            assert message is not None and message.actor_name == "probe"
            consumer.ack(message)
        finally:
            consumer.close()
    finally:
        broker.close()
