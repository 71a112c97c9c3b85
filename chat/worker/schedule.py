"""The one schedule of the maintenance jobs (the backlog sweep and retention).

Every process that runs actors runs it: each `chatcluster worker` process, and embedded mode's
in-process worker. Both jobs are idempotent (chat/worker/actors.py), so several schedules at once
only repeat a cheap check, and no process has to be elected to own them."""

from __future__ import annotations

import asyncio
import logging

from chat.worker.actors import Actors

log = logging.getLogger(__name__)


async def enqueue_maintenance(actors: Actors, interval_s: float, *, at_once: bool) -> None:
    """Enqueue the sweep and retention every `interval_s` until cancelled; the first time at
    once with `at_once` (a worker process: it often replaces one that crashed, so it catches up
    straight away), else after one interval (embedded mode, whose process has just opened its
    own stores). A failed enqueue (the broker's Redis down) is logged and retried at the next
    tick: the sweep exists to catch up on whatever such an outage left behind."""
    if not at_once:
        await asyncio.sleep(interval_s)
    while True:
        try:
            # Off the loop: RedisBroker's enqueue is a blocking network call.
            await asyncio.to_thread(actors.sweep.send)
            await asyncio.to_thread(actors.retention.send)
        except Exception:
            log.warning("could not enqueue maintenance jobs", exc_info=True)
        await asyncio.sleep(interval_s)
