"""The Dramatiq broker and the persistence queue of each mode, built explicitly here (no
implicit global broker).

Embedded: Dramatiq's StubBroker with an in-process worker, pending flags in memory.

Cluster: Dramatiq's RedisBroker and pending flags kept in Redis. Dramatiq's keys live under the
cluster's key prefix (`<prefix>dramatiq:<queue>`, see chat/stores/cluster/redis_keys.py), so two
clusters sharing a Redis never take each other's jobs. Messages that exhaust their retries land
in Dramatiq's dead-letter set (`<prefix>dramatiq:<queue>.XQ`, kept a week); the periodic sweep
re-queues their conversations, so nothing stays unarchived."""

from __future__ import annotations

from typing import TYPE_CHECKING

import dramatiq
from dramatiq.brokers.stub import StubBroker

from chat.config import Backend, Settings
from chat.worker.queue import DramatiqQueue, MemoryPendingFlags

if TYPE_CHECKING:
    from chat.stores.cluster.pending_flags import RedisPendingFlags


def cluster_broker_and_flags(settings: Settings) -> tuple[dramatiq.Broker, RedisPendingFlags]:
    # Imported here: embedded mode never loads the cluster drivers (asyncpg, PyMongo, ...).
    from dramatiq.brokers.redis import RedisBroker

    from chat.stores.cluster.pending_flags import RedisPendingFlags
    from chat.stores.cluster.redis_conn import RedisTarget, make_client
    from chat.stores.cluster.redis_keys import RedisKeys

    keys = RedisKeys(settings.redis_key_prefix)
    target = RedisTarget.of(settings)
    # Through Sentinel, the broker's client asks for the current primary on every reconnect.
    # Its jobs need no WAIT: a job lost in a failover is found again by the periodic sweep.
    broker = RedisBroker(client=target.sync_client(), namespace=keys.dramatiq_namespace)  # type: ignore[no-untyped-call]
    # The same reconnecting, retrying client as the stores: a Redis restart must not turn a
    # durable send into an error.
    return broker, RedisPendingFlags(make_client(target), keys)


def broker_and_queue(settings: Settings) -> tuple[dramatiq.Broker, DramatiqQueue]:
    """The queue is bound to the persist actor once the actors are registered."""
    if settings.backend is Backend.EMBEDDED:
        return StubBroker(), DramatiqQueue(MemoryPendingFlags(), blocking_send=False)
    broker, flags = cluster_broker_and_flags(settings)
    return broker, DramatiqQueue(flags, blocking_send=True)
