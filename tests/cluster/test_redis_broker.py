"""The worker's Dramatiq broker polls Redis less (chat/worker/redis_broker.py), on a real Redis:
a longer first wait after a job, a prompt persistence queue while it is idle, the other queues
every few seconds, and control handed back to Dramatiq's consumer thread between fetches."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace

import dramatiq
import pytest
import redis

from chat.app.queueing import cluster_broker
from chat.config import Settings
from chat.worker import MAINTENANCE_QUEUE, PERSIST_QUEUE
from chat.worker.redis_broker import (
    FIRST_BACKOFF_EXPONENT,
    RELAXED_POLL_MS,
    SLICE_S,
    PatientRedisBroker,
)
from tests.servers import RedisServer

TIMEOUT_MS = 1000  # the worker timeout chat/app/workers.py sets


@pytest.fixture
def broker(private_redis: RedisServer, cluster_settings: Settings) -> Iterator[PatientRedisBroker]:
    b = cluster_broker(
        replace(cluster_settings, redis_url=private_redis.url, redis_key_prefix="t:")
    )
    assert isinstance(b, PatientRedisBroker)
    for queue in (PERSIST_QUEUE, MAINTENANCE_QUEUE):

        @dramatiq.actor(broker=b, queue_name=queue, actor_name=f"probe_{queue}")
        def probe() -> None: ...

    yield b
    b.close()


def _fetches(r: redis.Redis) -> int:
    """Dispatch-script calls so far: each fetch of a consumer is one."""
    return int(r.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))


def _seconds_between_fetches(
    broker: PatientRedisBroker, r: redis.Redis, queue: str, *, hold_a_job: bool = False
) -> float:
    """How long a consumer that has been idle a while (misses high, as after a minute of empty
    fetches) waits between two empty fetches; every `next` meanwhile returns within a slice."""
    consumer = broker.consume(queue, prefetch=2, timeout=TIMEOUT_MS)
    try:
        if hold_a_job:
            broker.get_actor(f"probe_{queue}").send()
            assert next(consumer) is not None  # running (not acked): one job outstanding
        consumer.misses = 20
        assert next(consumer) is None  # the empty fetch
        start, fetches = time.monotonic(), _fetches(r)
        deadline = start + 2 * RELAXED_POLL_MS / 1000
        while _fetches(r) == fetches:
            assert time.monotonic() < deadline, "no second fetch"
            t = time.monotonic()
            assert next(consumer) is None
            assert time.monotonic() - t < SLICE_S + 0.5, "control came back within a slice"
        return time.monotonic() - start
    finally:
        consumer.close()


def test_the_first_wait_after_a_job_is_the_longer_one(broker: PatientRedisBroker) -> None:
    broker.get_actor(f"probe_{PERSIST_QUEUE}").send()
    consumer = broker.consume(PERSIST_QUEUE, prefetch=1, timeout=TIMEOUT_MS)
    try:
        message = next(consumer)
        assert message is not None and message.actor_name == f"probe_{PERSIST_QUEUE}"
        consumer.ack(message)
        # One empty fetch, then a wait picked by the miss count: 80-160 ms, where Dramatiq's
        # own consumer starts at 5-10 ms (misses 1 after it).
        assert next(consumer) is None
        assert consumer.misses == FIRST_BACKOFF_EXPONENT + 1
        # A job queued meanwhile is fetched at the next poll, within that wait.
        broker.get_actor(f"probe_{PERSIST_QUEUE}").send()
        deadline = time.monotonic() + 2
        while (message := next(consumer)) is None:
            assert time.monotonic() < deadline, "the job was not fetched"
        assert message.actor_name == f"probe_{PERSIST_QUEUE}"
        consumer.ack(message)
    finally:
        consumer.close()


def test_an_idle_persistence_queue_is_polled_every_worker_timeout(
    broker: PatientRedisBroker, private_redis: RedisServer
) -> None:
    waited = _seconds_between_fetches(broker, private_redis.client(), PERSIST_QUEUE)
    assert 0.5 * TIMEOUT_MS / 1000 - 0.05 <= waited < RELAXED_POLL_MS / 2000


def test_the_other_queues_are_polled_every_few_seconds(
    broker: PatientRedisBroker, private_redis: RedisServer
) -> None:
    r = private_redis.client()
    for queue in (MAINTENANCE_QUEUE, f"{PERSIST_QUEUE}.DQ"):
        waited = _seconds_between_fetches(broker, r, queue)
        assert waited >= 0.5 * RELAXED_POLL_MS / 1000 - 0.05, queue


def test_a_persistence_queue_running_its_job_is_polled_less(
    broker: PatientRedisBroker, private_redis: RedisServer
) -> None:
    waited = _seconds_between_fetches(
        broker, private_redis.client(), PERSIST_QUEUE, hold_a_job=True
    )
    assert waited >= 0.5 * RELAXED_POLL_MS / 1000 - 0.05
