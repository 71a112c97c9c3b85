"""The domain's JobQueue on Dramatiq: one persistence batch job per burst of sends.

Which send queues a job is decided by the log (the append that claims the schedule, see
chat/domain/persistence.py), so this class only sends the job, after `linger_ms`: the events
of that window are archived by one job instead of one job each, which is what makes the
MongoDB writes bulk. History never waits for it (the log's tail is folded into every page), and
durability does not depend on it (the log is durable before the ack)."""

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
        actor, delay = self._actor, self.linger_ms or None
        if self._blocking_send:
            # RedisBroker.enqueue is a blocking network call: keep it off the loop.
            await asyncio.to_thread(lambda: actor.send_with_options(args=(token,), delay=delay))
        else:
            actor.send_with_options(args=(token,), delay=delay)
        self.enqueued += 1
