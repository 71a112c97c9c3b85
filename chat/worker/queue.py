"""The domain's JobQueue on Dramatiq: one persistence batch job per burst of sends.

Which send queues a job is decided by the log (the append that claims the schedule, see
chat/domain/persistence.py), so this class only sends the job, at once. The job then waits out
the linger on its worker thread (until `linger_ms` after it was sent, chat/worker/actors.py)
before it takes the dirty set: the events of that window are archived by one job instead of one
job each, which is what makes the MongoDB writes bulk. History never waits for it (the log's
tail is folded into every page), and durability does not depend on it (the log is durable
before the ack).

Why the job is not sent with Dramatiq's `delay` instead: a delayed message takes a detour
through the queue's delay queue (sent there, fetched, held by the worker until due, sent again
to the queue, fetched again, acked twice), and the delay queue's consumer, having found a
message, polls Redis again 5 ms later, then 10, 20, ... up to the worker timeout: some 30 Redis
commands per job that a job waiting on its thread does not cost. A thread of the pool (4 by
default) is taken for the linger instead: a chain has one job at a time."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

PERSIST_LINGER_MS = 1000
"""The default of `Settings.persist_linger_ms` (`CHAT_PERSIST_LINGER_MS`): how long a batch job
waits before it takes the dirty set, the window whose sends share one job. Longer means fewer
MongoDB round trips per message and an older unarchived tail."""


class Sendable(Protocol):
    def send_with_options(self, *, args: tuple[Any, ...], delay: int | None) -> object: ...


class DramatiqQueue:
    """Bound to the actor after the actors are registered (they need the domain, which needs
    this queue)."""

    def __init__(self, *, blocking_send: bool, linger_ms: int = PERSIST_LINGER_MS) -> None:
        self._actor: Sendable | None = None
        self._blocking_send = blocking_send
        self.linger_ms = linger_ms
        self.enqueued = 0
        """Batch jobs queued by this process (tests assert a burst of sends queues O(1))."""

    def bind(self, actor: Sendable) -> None:
        self._actor = actor

    async def persist_batch(self, token: str) -> None:
        if self._actor is None:
            raise RuntimeError("DramatiqQueue used before bind()")
        actor = self._actor
        if self._blocking_send:
            # RedisBroker.enqueue is a blocking network call: keep it off the loop.
            await asyncio.to_thread(lambda: actor.send_with_options(args=(token,), delay=None))
        else:
            actor.send_with_options(args=(token,), delay=None)
        self.enqueued += 1
