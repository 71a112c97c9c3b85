"""Unread counts without a server (in-memory ports): the messages above the read pointer, sent
by others and not deleted (docs/protocol.md, "Unread count"), wherever the archive's watermark
falls, so a delete still only in the log's tail counts too."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.support.messaging import CID, Op, ops, principal, run, world


@settings(max_examples=60, deadline=None)
@given(script=ops, keep=st.integers(0, 3), batch=st.integers(1, 3))
def test_unread_counts_live_messages_of_others(script: list[Op], keep: int, batch: int) -> None:
    async def scenario() -> None:
        w = world(log_keep_events=keep)
        ref = await run(w, script, batch)
        messages = ref.messages()
        for user in ("alice", "bob"):
            for read_seq in range(len(ref.events) + 1):
                expected = sum(
                    1
                    for m in messages
                    if m.seq > read_seq and m.sender_id != user and not m.deleted
                )
                assert await w.service.unread(CID, user, read_seq) == expected, (user, read_seq)

    asyncio.run(scenario())


async def test_a_delete_in_the_tail_of_an_archived_message() -> None:
    w = world(log_keep_events=0)
    await w.service.send(principal("bob"), CID, "m1", "hello")
    await w.service.send(principal("bob"), CID, "m2", "hello again")
    await w.service.persist(CID)  # both archived; the archive counts 2 unread for alice
    await w.service.delete(principal("bob"), CID, 1, "d1")  # in the log only, for now
    assert await w.service.unread(CID, "alice", 0) == 1
    await w.service.persist(CID)
    assert await w.service.unread(CID, "alice", 0) == 1


async def test_messages_archived_past_the_watermark_count_once() -> None:
    """The watermark is a lower bound (a cluster's archive watermark lags, the log's progress
    record can be rolled back by a failover): messages the archive already holds above it are
    also in the log's tail, and must be counted once, not from both."""
    w = world(log_keep_events=10)
    for n in range(3):
        await w.service.send(principal("bob"), CID, f"m{n}", "hello")
    await w.service.persist(CID)
    w.archive.marks[CID] = 1  # archived up to 3; recorded only up to 1
    assert await w.service.unread(CID, "alice", 0) == 3
