"""The in-process Dramatiq worker archives conversation logs, and the periodic sweep catches a
conversation whose persistence job was never enqueued (a process died between append and
enqueue)."""

from __future__ import annotations

import asyncio
import time

from chat.domain.models import EventDraft, EventKind
from chat.domain.persistence import PAGE
from tests.support.archived import archived_upto
from tests.support.fixtures import Server, ServerFactory


async def _archived_up_to(server: Server, cid: str, seq: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while await archived_upto(server.rt.chat, cid) < seq:
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
    assert await archived_upto(server.rt.chat, cid) == 0
    await _archived_up_to(server, cid, 1)  # the test server sweeps every second
    assert [m["body"] for m in await server.api.history(b, cid)] == ["x"]


async def test_a_burst_of_sends_queues_one_job_not_one_per_conversation(server: Server) -> None:
    """Embedded mode's signal is in memory (chat/stores/embedded/event_log.py): the same O(1)."""
    people = [await server.api.register() for _ in range(6)]
    pairs = [(a, b) for a in people[:3] for b in people[3:]]
    dms = [(a, await server.api.dm(a, b)) for a, b in pairs]
    before = server.rt.queue.enqueued
    # The linger (`CHAT_PERSIST_LINGER_MS`, chat/app/queueing.py) is what makes one job take
    # the whole burst; whatever the test server's, 250 ms here.
    queue = server.rt.queue
    linger, queue.linger_ms = queue.linger_ms, 250
    try:
        await asyncio.gather(
            *(server.api.send(a, cid, f"burst {i}") for a, cid in dms for i in range(3))
        )
        for _, cid in dms:
            await _archived_up_to(server, cid, 3)
    finally:
        queue.linger_ms = linger
    # One job for the burst, and at most a couple of continuations (9 or more before).
    assert server.rt.queue.enqueued - before <= 3, server.rt.queue.enqueued - before


async def test_search_finds_a_message_right_after_its_ack_while_its_job_lingers(
    make_server: ServerFactory,
) -> None:
    """Embedded mode lingers like a cluster (`CHAT_PERSIST_LINGER_MS`), and its search reads
    the archive only: it archives the conversations it searches first (docs/http.md)."""
    server = await make_server(persist_linger_ms=60_000)  # no job archives during the test
    a, b = await server.api.register(), await server.api.register()
    cid = await server.api.dm(a, b)
    await server.api.send(a, cid, "a fresh needle")
    assert await archived_upto(server.rt.chat, cid) == 0, "archived already: nothing tested"
    found = await server.api.http.get("/api/v1/search", headers=b.auth, params={"q": "NEEDLE"})
    assert [m["body"] for m in found.json()["messages"]] == ["a fresh needle"]
    assert await archived_upto(server.rt.chat, cid) == 1
    # Closing the server does not wait out the minute: the lingering job runs at once.
    started = time.monotonic()
    await server.stop()
    assert time.monotonic() - started < 30


async def test_search_catches_up_a_backlog_longer_than_a_page(make_server: ServerFactory) -> None:
    """More unarchived events than one read takes (`PAGE`, 500): the search archives them all
    before it looks, the newest included."""
    server = await make_server(persist_linger_ms=60_000)
    a, b = await server.api.register(), await server.api.register()
    cid = await server.api.dm(a, b)
    log = server.rt.chat.ports.log
    for i in range(PAGE + 10):  # straight to the log: no job, as after a crash
        await log.append(EventDraft(cid, EventKind.MESSAGE, a.id, f"k{i}", f"backlog {i}"))
    assert await archived_upto(server.rt.chat, cid) == 0
    found = await server.api.http.get(
        "/api/v1/search", headers=b.auth, params={"q": f"backlog {PAGE + 9}"}
    )
    assert [m["seq"] for m in found.json()["messages"]] == [PAGE + 10]
    assert await archived_upto(server.rt.chat, cid) == PAGE + 10
