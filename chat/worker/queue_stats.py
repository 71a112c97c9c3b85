"""How many jobs wait in each Dramatiq queue and its dead-letter set, read from the broker.

Dramatiq has no public call for this, so it reads the layouts the two brokers document: on
Redis, a queue is the list `<namespace>:<queue>` and its dead letters the sorted set
`<namespace>:<queue>.XQ` (dramatiq/brokers/redis/dispatch.lua); the StubBroker (embedded mode)
keeps a `queue.Queue` and a list per queue. Delayed retries sit in `<queue>.DQ`, reported as a
queue of its own so a retry storm is visible.
"""

from __future__ import annotations

from dataclasses import dataclass

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker


@dataclass(frozen=True)
class QueueCounts:
    waiting: dict[str, int]
    dead: dict[str, int]


def queue_counts(broker: dramatiq.Broker) -> QueueCounts:
    """One round trip on Redis (a pipeline); blocking, so call it from a worker thread."""
    names = sorted(broker.get_declared_queues() | broker.get_declared_delay_queues())
    if isinstance(broker, RedisBroker):
        pipe = broker.client.pipeline(transaction=False)
        for name in names:
            pipe.llen(f"{broker.namespace}:{name}")
        primary = [n for n in names if not n.endswith(".DQ")]
        for name in primary:
            pipe.zcard(f"{broker.namespace}:{name}.XQ")
        replies = [int(r) for r in pipe.execute()]
        return QueueCounts(
            dict(zip(names, replies[: len(names)], strict=True)),
            dict(zip(primary, replies[len(names) :], strict=True)),
        )
    if isinstance(broker, StubBroker):
        return QueueCounts(
            {n: broker.queues[n].qsize() for n in names if n in broker.queues},
            {
                n: len(broker.dead_letters_by_queue.get(n, ()))
                for n in names
                if not n.endswith(".DQ")
            },
        )
    return QueueCounts({}, {})
