"""The actors, registered on an explicitly built broker (no implicit global broker).

Every actor is idempotent (Dramatiq delivers at least once): persisting re-applies the same
events, which the archive ignores, and a redelivered batch job whose token lost the schedule
just ends; the sweep and retention only re-check state. Retries are
bounded in count and age; a message that exhausts them goes to Dramatiq's dead-letter queue and
the periodic sweep picks the conversation up again once the archive is back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import dramatiq
from dramatiq.common import current_millis
from dramatiq.middleware import CurrentMessage

from chat.domain.chat import Chat
from chat.domain.clock import Clock, now_ms
from chat.metrics import Metrics
from chat.worker import MAINTENANCE_QUEUE, PERSIST_QUEUE
from chat.worker.job_metrics import JobMetrics
from chat.worker.queue_stats import queue_counts
from chat.worker.runner import LoopRunner

log = logging.getLogger(__name__)

# Backoff doubles from 0.5 s to 30 s; 25 retries span a bit over ten minutes of outage, and
# the sweep covers anything longer.
PERSIST_MAX_RETRIES = 25
CHAIN_JOB_S = 30.0
"""How long one job carries its chain on itself, a linger apart, before it queues the next job
(see `persist_batch`); with the persister's own backlog budget well inside the time limit."""


@dataclass(frozen=True)
class Actors:
    persist: dramatiq.Actor[[str], None]
    """`persist_batch(token)`: drains the dirty set (chat/domain/persistence.py)."""
    legacy_persist: dramatiq.Actor[[str], None]
    """`persist_conversation(cid)`, from the release before batch jobs: marks it dirty."""
    sweep: dramatiq.Actor[[], None]
    retention: dramatiq.Actor[[], None]


def linger_left_ms(sent_at_ms: int, linger_ms: int, now_ms_: int) -> int:
    """How much longer a batch job sent at `sent_at_ms` waits before it takes the dirty set:
    nothing once its linger is over (a retry, or a job that waited in the queue), and never more
    than the linger, whatever the sender's clock said (another machine's)."""
    return max(0, min(linger_ms, sent_at_ms + linger_ms - now_ms_))


def register_actors(
    broker: dramatiq.Broker,
    runner: LoopRunner,
    chat: Chat,
    clock: Clock,
    retention_days: int,
    metrics: Metrics | None = None,
    *,
    linger_ms: Callable[[], int] = lambda: 0,
    stopping: threading.Event | None = None,
) -> Actors:
    """`linger_ms`: how long after it was sent a batch job waits on its worker thread before it
    takes the dirty set (the queue's setting, read per job; chat/worker/queue.py says why the
    job is not sent with a delay instead). `stopping`, once set, ends every wait at once: a
    process that stops archives what it holds instead of waiting out lingers."""
    cut_short = stopping if stopping is not None else threading.Event()
    if metrics is not None:
        broker.add_middleware(JobMetrics(metrics))
    broker.add_middleware(CurrentMessage())

    persister = chat.messaging.persister

    def persist_batch(token: str) -> None:
        """A chain's job (a token) carries the chain on itself, one linger apart, while sends
        keep coming, for up to `CHAIN_JOB_S`, then queues the next job: a job per linger cost
        Dramatiq a send, a fetch, an ack and the polls after each (some 25 Redis commands).
        "While sends keep coming": a take that archived something holds the schedule for one
        more linger even when nothing is dirty yet at its end, so the sends of that linger
        join the next take instead of queueing a job; a linger with no sends ends the chain.
        A helper job (no token) takes once. A job that fails is retried by Dramatiq with its
        own token, which is the chain's."""
        linger, message = linger_ms(), CurrentMessage.get_current_message()
        if linger and message is not None:
            # Dramatiq stamps `message_timestamp` with `current_millis()` when it is sent.
            wait_ms = linger_left_ms(message.message_timestamp, linger, current_millis())
            cut_short.wait(wait_ms / 1000)
        loops = bool(token) and linger > 0
        deadline = time.monotonic() + CHAIN_JOB_S
        while True:
            done = runner.run(partial(persister.run, token, requeue=not loops))
            log.debug("archived %d events of %d conversations", done.events, done.conversations)
            if not loops:
                return
            leaving = cut_short.is_set() or time.monotonic() > deadline
            if done.carry_on is None:  # nothing dirty: the take released the schedule
                if leaving or done.events == 0 or not runner.run(partial(persister.hold, token)):
                    return
            elif leaving:
                runner.run(partial(persister.requeue, token))
                return
            cut_short.wait(linger_ms() / 1000)

    def persist_conversation(conversation_id: str) -> None:
        """The job a sender of the previous release queues (one per conversation) during a
        rolling upgrade: handed to the batch path instead of failing as an unknown actor."""
        runner.run(lambda: persister.mark([conversation_id]))

    async def sweep() -> int:
        """Mark every conversation whose archive lags its log dirty again and queue a batch
        job for them (a job lost with a crashed process, or one dead-lettered during a long
        outage)."""
        behind = await persister.sweep()
        if metrics is not None:
            lag_events = sum(lag.last - lag.archived for lag in behind.values())
            # The first unarchived event's timestamp: persistence lag in seconds. One pipelined
            # read for them all, not a round trip per conversation.
            firsts = await chat.ports.log.read_many(
                [(cid, lag.archived) for cid, lag in behind.items()], 1
            )
            stamps = [first.events[0].ts for first in firsts if first.events]
            oldest = min(stamps, default=None)
            metrics.persist_lag.set(len(behind))
            metrics.persist_lag_events.set(lag_events)
            age = 0.0 if oldest is None else max(0.0, (now_ms(clock) - oldest) / 1000)
            metrics.persist_lag_seconds.set(age)
        return len(behind)

    def sweep_backlog() -> None:
        behind = runner.run(sweep)
        if metrics is not None:
            # Queue depth is read here, on Dramatiq's thread: the Redis client is blocking.
            counts = queue_counts(broker)
            for name, waiting in counts.waiting.items():
                metrics.queue_messages.labels(name).set(waiting)
            for name, dead in counts.dead.items():
                metrics.dead_letters.labels(name).set(dead)
            metrics.sweeps.inc()
        if behind:
            log.info("sweep queued %d conversations whose archive lagged", behind)

    def apply_retention() -> None:
        if retention_days <= 0:
            return
        cutoff = now_ms(clock) - retention_days * 86_400_000
        dropped = runner.run(lambda: chat.ports.archive.delete_older_than(cutoff))
        log.info("retention dropped %d messages", dropped)

    # Both persistence actors retry alike: backoff doubles from 0.5 s to 30 s, for an hour.
    persist_retries: dict[str, Any] = {
        "queue_name": PERSIST_QUEUE,
        "max_retries": PERSIST_MAX_RETRIES,
        "min_backoff": 500,
        "max_backoff": 30_000,
        "max_age": 3_600_000,
    }
    return Actors(
        persist=dramatiq.actor(
            broker=broker,
            actor_name="persist_batch",
            time_limit=120_000,
            **persist_retries,
        )(persist_batch),
        legacy_persist=dramatiq.actor(
            broker=broker,
            actor_name="persist_conversation",
            **persist_retries,
        )(persist_conversation),
        sweep=dramatiq.actor(
            broker=broker,
            actor_name="sweep_backlog",
            queue_name=MAINTENANCE_QUEUE,
            max_retries=3,
        )(sweep_backlog),
        retention=dramatiq.actor(
            broker=broker,
            actor_name="apply_retention",
            queue_name=MAINTENANCE_QUEUE,
            max_retries=3,
        )(apply_retention),
    )
