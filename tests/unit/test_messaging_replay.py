"""MessagingService.replay without a server (in-memory ports): a resume gets exactly the events
after its position, from the log, or from the archive plus the log when the log was trimmed past
it; or `recoverable=False` (the client gets `not_recoverable` and reloads), never a partial or
gappy range (design.md guarantee 4; docs/protocol.md, "Delivery and resume")."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat.domain.errors import Unavailable
from chat.domain.messaging import Replay
from tests.unit.support.messaging import CID, Op, World, ops, principal, run, world


@settings(max_examples=60, deadline=None)
@given(script=ops, keep=st.integers(0, 3), most=st.integers(1, 8), batch=st.integers(1, 3))
def test_replay_is_exact_or_not_recoverable(
    script: list[Op], keep: int, most: int, batch: int
) -> None:
    async def scenario() -> None:
        w = world(log_keep_events=keep, replay_max_events=most)
        ref = await run(w, script, batch)
        last = len(ref.events)
        for after in range(last + 3):
            replay = await w.service.replay(CID, after)
            if after > last or last - after > most:
                # A claim beyond the head, or a gap longer than replay_max_events.
                assert replay == Replay(CID, (), False), after
            else:
                # Everything after `after`, each once, in order, trimmed log or not.
                assert replay == Replay(CID, tuple(ref.events[after:]), True), after

    asyncio.run(scenario())


async def _sent(w: World, first: int, last: int) -> None:
    """Messages with seqs first..last (a fresh conversation starts at 1)."""
    for i in range(first - 1, last):
        await w.service.send(principal("alice"), CID, f"m{i}", f"body {i}")


async def test_resume_below_the_trimmed_log_comes_from_the_archive() -> None:
    w = world(log_keep_events=2, replay_max_events=100)
    await _sent(w, 1, 10)
    await w.service.persist(CID)
    assert sorted(w.log.events[CID]) == [9, 10]  # trimmed: 1..8 only in the archive
    await _sent(w, 11, 13)  # not archived yet
    assert sorted(w.log.events[CID]) == [9, 10, 11, 12, 13]
    replay = await w.service.replay(CID, 3)
    assert replay.recoverable
    assert [e.seq for e in replay.events] == list(range(4, 14))
    assert [e.body for e in replay.events][:2] == ["body 3", "body 4"]


async def test_a_hole_between_archive_and_log_is_not_recoverable() -> None:
    """The log was trimmed past what the archive holds (the archive lost events): the range
    cannot be assembled without a hole, so it is not replayed in part."""
    w = world(log_keep_events=0, replay_max_events=100)
    await _sent(w, 1, 6)
    await w.service.persist(CID)
    await _sent(w, 7, 9)  # in the log only
    for seq in (3, 4):
        del w.archive.all_events[CID][seq]
    assert await w.service.replay(CID, 1) == Replay(CID, (), False)
    assert (await w.service.replay(CID, 4)).recoverable  # the part after the hole is whole
    # Nor when the archive lost the newest events it had, just before the log's start.
    del w.archive.all_events[CID][6]
    assert await w.service.replay(CID, 4) == Replay(CID, (), False)


async def test_gap_limit_is_inclusive() -> None:
    w = world(replay_max_events=5)
    await _sent(w, 1, 8)
    assert [e.seq for e in (await w.service.replay(CID, 3)).events] == [4, 5, 6, 7, 8]
    assert await w.service.replay(CID, 2) == Replay(CID, (), False)
    assert await w.service.replay(CID, 8) == Replay(CID, (), True)  # nothing missed
    assert await w.service.replay(CID, 9) == Replay(CID, (), False)  # a seq never assigned


async def test_archive_down_below_the_trimmed_log_is_an_error_not_a_partial_replay() -> None:
    w = world(log_keep_events=1, replay_max_events=100)
    await _sent(w, 1, 5)
    await w.service.persist(CID)  # the log keeps 5 only
    w.archive.down = True
    with pytest.raises(Unavailable) as raised:
        await w.service.replay(CID, 2)
    assert raised.value.code == "dependency_unavailable"
    assert [e.seq for e in (await w.service.replay(CID, 4)).events] == [5]  # the log suffices
