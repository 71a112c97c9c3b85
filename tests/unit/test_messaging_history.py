"""MessagingService history without a server (in-memory ports, tests/unit/support/messaging.py):
pages merge the archive with the log's not-yet-archived tail, with no gap and no duplicate
wherever the archive's watermark and the log's trimmed start fall, and edits and deletes fold
into the messages they target (docs/protocol.md, "History over HTTP merges the archive with the
not-yet-archived log tail")."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat.domain.errors import NotFound
from chat.domain.models import EventDraft, EventKind, Message
from tests.unit.support.messaging import CID, Op, World, ops, principal, run, world


async def forward(w: World, limit: int) -> list[Message]:
    """Every page from the start with `after` cursors."""
    seen: list[Message] = []
    after = 0
    while True:
        page = await w.service.history(principal("alice"), CID, after=after, limit=limit)
        assert not page.archive_unavailable
        assert len(page.messages) <= limit
        if not page.messages:
            return seen
        seen.extend(page.messages)
        after = page.messages[-1].seq


async def backward(w: World, limit: int) -> list[Message]:
    """Every page from the newest with `before` cursors."""
    seen: list[Message] = []
    before: int | None = None
    while True:
        page = await w.service.history(principal("alice"), CID, before=before, limit=limit)
        assert len(page.messages) <= limit
        if not page.messages:
            return seen
        seen[:0] = page.messages
        before = page.messages[0].seq


@settings(max_examples=60, deadline=None)
@given(script=ops, keep=st.integers(0, 3), limit=st.integers(1, 4), batch=st.integers(1, 3))
def test_pages_merge_archive_and_log_tail(
    script: list[Op], keep: int, limit: int, batch: int
) -> None:
    async def scenario() -> None:
        w = world(log_keep_events=keep)
        ref = await run(w, script, batch)
        expected = ref.messages()
        # Paging either way yields every message once, in seq order, with edits and deletes
        # folded in (no edit or delete event shows as a message of its own).
        assert await forward(w, limit) == expected
        assert await backward(w, limit) == expected
        newest = await w.service.history(principal("bob"), CID, limit=limit)
        assert newest.messages == expected[-limit:]
        for message in expected:
            assert await w.service.get_message(CID, message.seq) == message
        for event in ref.events:
            if event.kind is not EventKind.MESSAGE:
                assert await w.service.get_message(CID, event.seq) is None
        assert (await w.service.last_message(CID)) == (expected[-1] if expected else None)

    asyncio.run(scenario())


async def _sent(w: World, n: int, user: str = "alice") -> list[int]:
    return [
        (await w.service.send(principal(user), CID, f"m{i}", f"body {i}")).event.seq
        for i in range(n)
    ]


async def test_edit_and_delete_in_the_tail_fold_into_archived_messages() -> None:
    w = world(log_keep_events=0)
    one, two, three = await _sent(w, 3)
    await w.service.persist(CID)
    assert w.log.events[CID] == {}  # all archived, the log trimmed to nothing
    await w.service.edit(principal("alice"), CID, one, "e1", "one, edited")
    await w.service.delete(principal("alice"), CID, two, "d2")
    # The archive has not seen the edit and the delete yet; history has.
    assert [m.body for m in (await w.archive.history(CID, before=None, after=None, limit=9))] == [
        "body 0",
        "body 1",
        "body 2",
    ]
    page = (await w.service.history(principal("bob"), CID, limit=10)).messages
    assert [(m.seq, m.body, m.deleted) for m in page] == [
        (one, "one, edited", False),
        (two, "", True),
        (three, "body 2", False),
    ]
    assert page[0].edited_ts == 4000 and page[1].edited_ts == 5000  # the events' own ts
    # And the same once the worker caught up.
    await w.service.persist(CID)
    assert (await w.service.history(principal("bob"), CID, limit=10)).messages == page


@pytest.mark.parametrize("archived", [False, True])
async def test_an_edit_that_raced_a_delete_does_not_revive_it(archived: bool) -> None:
    """An edit and a delete of one message that both passed their checks at once: the log
    holds the delete, then the edit. The page shows the delete, from the log's tail and from
    the archive alike, and the message stays gone for new frames."""
    w = world(log_keep_events=0)
    (seq,) = await _sent(w, 1)
    await w.service.persist(CID)  # the message is archived; the two events are in the tail
    await w.service.delete(principal("alice"), CID, seq, "d")
    raced = EventDraft(CID, EventKind.EDIT, "alice", "e", "edited", seq)
    assert not (await w.log.append(raced)).duplicate
    if archived:
        await w.service.persist(CID)
        assert w.log.events[CID] == {}
    (message,) = (await w.service.history(principal("bob"), CID, limit=5)).messages
    assert message.deleted and message.body == ""
    with pytest.raises(NotFound):
        await w.service.edit(principal("alice"), CID, seq, "e2", "again")


async def test_a_tail_longer_than_one_log_read() -> None:
    """The tail is read in pieces of 500 events: none is skipped or repeated at the seams."""
    w = world()
    seqs = await _sent(w, 1203)
    await w.archive.apply([w.log.events[CID][s] for s in seqs[:150]])  # the worker is behind:
    # 1053 events come from the log's tail, in three reads
    page = await w.service.history(principal("bob"), CID, after=140, limit=100)
    assert [m.seq for m in page.messages] == seqs[140:240]
    newest = await w.service.history(principal("bob"), CID, limit=100)
    assert [m.seq for m in newest.messages] == seqs[-100:]


async def test_archive_down_pages_come_from_the_log_and_say_so() -> None:
    w = world(log_keep_events=2)
    seqs = await _sent(w, 6)
    await w.service.persist(CID)  # the log keeps 5 and 6
    await w.service.send(principal("bob"), CID, "m7", "body 7")  # 7: in the log only
    w.archive.down = True
    newest = await w.service.history(principal("bob"), CID, limit=2)
    assert newest.archive_unavailable
    assert [m.seq for m in newest.messages] == [6, 7]
    # A page that would start below what the log holds is empty, not missing its start.
    older = await w.service.history(principal("bob"), CID, after=seqs[1], limit=2)
    assert older.archive_unavailable and older.messages == []
    after_floor = await w.service.history(principal("bob"), CID, after=4, limit=5)
    assert [m.seq for m in after_floor.messages] == [5, 6, 7]
    # One failure trips the breaker: the next pages do not wait for the archive again.
    calls = w.archive.calls
    await w.service.history(principal("bob"), CID, limit=2)
    assert w.archive.calls == calls
