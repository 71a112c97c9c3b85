"""The in-process Dramatiq worker archives conversation logs, and the periodic sweep catches a
conversation whose persistence job was never enqueued (a process died between append and
enqueue)."""

from __future__ import annotations

import asyncio
import time

from chat.domain.models import EventDraft, EventKind
from tests.support.fixtures import Server


async def _archived_up_to(server: Server, cid: str, seq: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while await server.rt.chat.ports.archive.watermark(cid) < seq:
        assert time.monotonic() < deadline, "archive never caught up"
        await asyncio.sleep(0.05)


async def test_sent_messages_are_archived_by_the_worker(server: Server) -> None:
    a, b = await server.api.register(), await server.api.register()
    cid = await server.api.dm(a, b)
    for i in range(5):
        await server.api.send(a, cid, f"keep {i}")
    await _archived_up_to(server, cid, 5)
    archived = await server.rt.chat.ports.archive.history(cid, before=None, after=None, limit=10)
    assert [m.body for m in archived] == [f"keep {i}" for i in range(5)]


async def test_sweep_archives_conversations_whose_job_was_lost(server: Server) -> None:
    a, b = await server.api.register(), await server.api.register()
    cid = await server.api.dm(a, b)
    # Append straight to the log, skipping the enqueue, as a crash right after the append would.
    await server.rt.chat.ports.log.append(EventDraft(cid, EventKind.MESSAGE, a.id, "lost", "x"))
    assert await server.rt.chat.ports.archive.watermark(cid) == 0
    await _archived_up_to(server, cid, 1)  # the test server sweeps every second
    assert [m["body"] for m in await server.api.history(b, cid)] == ["x"]
