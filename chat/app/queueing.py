"""The Dramatiq broker and the persistence queue of each mode, built explicitly here (no
implicit global broker).

Embedded: Dramatiq's StubBroker with an in-process worker.

Which send queues a persistence job is decided by the hot log itself (its dirty set and
schedule, chat/domain/persistence.py), in both modes.

Cluster: Dramatiq's RedisBroker. Dramatiq's keys live under the cluster's key prefix
(`<prefix>dramatiq:<queue>`, see chat/stores/cluster/redis_keys.py), so two clusters sharing a
Redis never take each other's jobs. Messages that exhaust their retries land in Dramatiq's
dead-letter set (`<prefix>dramatiq:<queue>.XQ`, kept a week); the periodic sweep re-queues
their conversations, so nothing stays unarchived."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.stub import StubBroker

from chat.config import Backend, Settings
from chat.worker import PERSIST_QUEUE
from chat.worker.queue import DramatiqQueue


def cluster_broker(settings: Settings) -> dramatiq.Broker:
    # Imported here: embedded mode never loads the cluster drivers (asyncpg, PyMongo, ...).
    from chat.stores.cluster.redis_conn import RedisTarget
    from chat.stores.cluster.redis_keys import RedisKeys
    from chat.worker.redis_broker import PatientRedisBroker

    keys = RedisKeys(settings.redis_key_prefix)
    target = RedisTarget.of(settings)
    # Through Sentinel, the broker's client asks for the current primary on every reconnect.
    # Its jobs need no WAIT: a job lost in a failover is found again by the periodic sweep.
    # Persistence is polled every worker timeout (search waits for it), the rest less often.
    return PatientRedisBroker(
        client=target.sync_client(),
        namespace=keys.dramatiq_namespace,
        prompt_queues=(PERSIST_QUEUE,),
    )


def broker_and_queue(settings: Settings) -> tuple[dramatiq.Broker, DramatiqQueue]:
    """The queue is bound to the persist actor once the actors are registered."""
    if settings.backend is Backend.EMBEDDED:
        # The same linger as a cluster's: a job per burst cost the one process more than the
        # sends themselves (thread hand-offs and a SQLite transaction each; rooms of 10 at
        # 100 msg/s: 0.28 CPU-s per 1000 deliveries with a job per burst, 0.13 with a second's
        # linger, docs/performance.md). Search, which reads the archive, still finds a message
        # right after its ack: in embedded mode it archives its conversations first
        # (`Persister.catch_up`).
        return StubBroker(), DramatiqQueue(
            blocking_send=False, linger_ms=settings.persist_linger_ms
        )
    return cluster_broker(settings), DramatiqQueue(
        blocking_send=True, linger_ms=settings.persist_linger_ms
    )
