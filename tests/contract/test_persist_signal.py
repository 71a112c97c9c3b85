"""The persistence signal of `EventLog` (chat/domain/ports.py; chat/domain/persistence.py), on
both implementations: the append marks its conversation dirty and only the append that finds no
job scheduled gets a job to queue; takes are disjoint; a job ends the schedule only when nothing
is dirty, atomically with appends."""

from __future__ import annotations

import asyncio
import secrets

from chat.domain.chat import Ports
from chat.domain.models import EventDraft, EventKind


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(6)}"


def _msg(cid: str, client_id: str) -> EventDraft:
    return EventDraft(cid, EventKind.MESSAGE, "u", client_id, "hi")


async def test_a_burst_of_appends_claims_one_job(ports: Ports) -> None:
    cids = [_id("c") for _ in range(5)]
    results = await asyncio.gather(
        *(ports.log.append(_msg(cid, f"k{i}")) for cid in cids for i in range(4))
    )
    jobs = [r.persist_job for r in results if r.persist_job is not None]
    assert len(jobs) == 1, jobs
    # A retried send is a duplicate: it claims nothing.
    again = await ports.log.append(_msg(cids[0], "k0"))
    assert again.duplicate and again.persist_job is None
    taken = await ports.log.take_dirty(100)
    assert sorted(taken) == sorted(cids)
    assert await ports.log.take_dirty(100) == []


async def test_takes_are_disjoint(ports: Ports) -> None:
    cids = [_id("c") for _ in range(40)]
    for cid in cids:
        await ports.log.append(_msg(cid, "k"))
    first, second, third = await asyncio.gather(*(ports.log.take_dirty(15) for _ in range(3)))
    everything = [*first, *second, *third]
    assert len(everything) == len(set(everything)) == 40
    assert set(everything) == set(cids)


async def test_the_schedule_is_released_only_when_nothing_is_dirty(ports: Ports) -> None:
    cid = _id("c")
    token = (await ports.log.append(_msg(cid, "k1"))).persist_job
    assert token is not None
    # Something is dirty: the job carries on with the same token.
    assert await ports.log.persist_continue(token)
    assert await ports.log.take_dirty(10) == [cid]
    # An append while the job holds the schedule marks dirty but queues nothing.
    assert (await ports.log.append(_msg(cid, "k2"))).persist_job is None
    assert await ports.log.take_dirty(10) == [cid]
    # Nothing dirty: released, so the next append claims it again.
    assert not await ports.log.persist_continue(token)
    assert (await ports.log.append(_msg(cid, "k3"))).persist_job is not None


async def test_a_job_whose_schedule_was_taken_over_ends(ports: Ports) -> None:
    cid = _id("c")
    old = (await ports.log.append(_msg(cid, "k1"))).persist_job
    assert old is not None
    assert not await ports.log.claim_persist("sweep-token", take_over=False)
    assert await ports.log.claim_persist("sweep-token", take_over=True)
    assert not await ports.log.persist_continue(old)  # dirty, but no longer its chain
    await ports.log.release_persist(old)  # not the holder: no effect
    assert (await ports.log.append(_msg(cid, "k2"))).persist_job is None
    await ports.log.release_persist("sweep-token")
    assert (await ports.log.append(_msg(_id("c"), "k3"))).persist_job is not None


async def test_an_append_into_a_dirty_conversation_claims_nothing(ports: Ports) -> None:
    """Only the append that makes its conversation dirty may claim the schedule (issue 14: one
    Redis command fewer per busy send). With the schedule given back while the conversation
    stays dirty (its job could not be queued), the next append there claims nothing: the sweep
    or an append into a conversation not yet dirty queues the job."""
    cid = _id("c")
    token = (await ports.log.append(_msg(cid, "k1"))).persist_job
    assert token is not None
    await ports.log.release_persist(token)  # `after_append` when queueing failed
    assert (await ports.log.append(_msg(cid, "k2"))).persist_job is None
    other = _id("c")
    job = (await ports.log.append(_msg(other, "k1"))).persist_job
    assert job is not None
    assert sorted(await ports.log.take_dirty(10)) == sorted([cid, other])  # one job drains both
    assert not await ports.log.persist_continue(job)
    assert (await ports.log.append(_msg(cid, "k3"))).persist_job is not None


async def test_an_append_after_the_take_marks_it_dirty_again(ports: Ports) -> None:
    """The take clears what tells an append "already dirty" (Redis: a field of the head), so a
    conversation taken by a job is dirty again after its next append, and its events reach a
    job; one marked dirty from outside an append still counts once."""
    cid = _id("c")
    for n in range(3):
        await ports.log.append(_msg(cid, f"k{n}"))
        assert await ports.log.take_dirty(10) == [cid]
    assert await ports.log.take_dirty(10) == []
    await ports.log.mark_dirty([cid])
    await ports.log.append(_msg(cid, "k9"))
    assert await ports.log.take_dirty(10) == [cid]


async def test_mark_dirty_puts_conversations_back(ports: Ports) -> None:
    cids = [_id("c") for _ in range(3)]
    await ports.log.mark_dirty(cids)
    await ports.log.mark_dirty(cids[:1])  # already there: still once
    assert sorted(await ports.log.take_dirty(10)) == sorted(cids)


async def test_watermarks_in_one_call(ports: Ports) -> None:
    cid, other, none = _id("c"), _id("c"), _id("c")
    for c, n in ((cid, 3), (other, 1)):
        events = [(await ports.log.append(_msg(c, f"k{i}"))).event for i in range(n)]
        await ports.archive.apply(events)
        await ports.archive.record_watermarks({c: n})
    assert await ports.archive.watermarks([cid, other, none]) == {cid: 3, other: 1, none: 0}
    assert await ports.archive.watermarks([]) == {}


async def test_read_many_is_read_of_each(ports: Ports) -> None:
    cid, other, empty = _id("c"), _id("c"), _id("c")
    for i in range(5):
        await ports.log.append(_msg(cid, f"k{i}"))
    await ports.log.append(_msg(other, "k"))
    await ports.log.trim(cid, 2)
    ranges = [(cid, 0), (cid, 3), (other, 0), (empty, 0)]
    many = await ports.log.read_many(ranges, 2)
    assert many == [await ports.log.read(c, after, 2) for c, after in ranges]
    assert [e.seq for e in many[1].events] == [4, 5] and not many[0].complete
    assert await ports.log.read_many([], 2) == []
