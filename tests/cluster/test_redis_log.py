"""The send script under concurrency and after Redis loses its data."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis

from chat.domain.channels import conversation_channel
from chat.domain.errors import RateLimited
from chat.domain.frames import event_frame
from chat.domain.models import AppendResult, EventDraft, EventKind, RateCharge
from chat.stores.cluster import ClusterPorts
from chat.stores.cluster.redis_keys import DEFAULT_KEYS
from chat.stores.cluster.redis_log import UNARCHIVED_PER_CALL, RedisEventLog
from tests.cluster.helpers import Collector, eventually


def _draft(cid: str, client_id: str, sender: str = "u1", body: str = "hi") -> EventDraft:
    return EventDraft(cid, EventKind.MESSAGE, sender, client_id, body)


async def _dedupe_fields(r: aioredis.Redis, head: str) -> set[bytes]:
    """The head's dedupe fields (`sender NUL client_id`; the head's own names have no NUL)."""
    return {k for k in await r.hkeys(head) if b"\x00" in k}


async def test_concurrent_appends_get_gapless_seqs_published_in_order(
    cluster: ClusterPorts, fresh_redis_url: str
) -> None:
    cid = f"c_{uuid.uuid4().hex}"
    collector = Collector()
    sub = await cluster.ports.bus.open(collector)
    await sub.subscribe([conversation_channel(cid)])
    # Several logs on separate connection pools, as several gateway pods would be.
    clients = [aioredis.Redis.from_url(fresh_redis_url) for _ in range(4)]
    archive = cluster.ports.archive
    logs = [RedisEventLog(c, archive.floor, archive.event) for c in clients]
    try:
        # 40 in flight at once: real contention without opening 200 connections.
        gate = asyncio.Semaphore(40)

        async def send(i: int) -> AppendResult:
            async with gate:
                return await logs[i % 4].append(_draft(cid, f"m{i}", f"u{i % 7}"))

        results = await asyncio.gather(*(send(i) for i in range(200)))
        assert sorted(r.event.seq for r in results) == list(range(1, 201))
        assert not any(r.duplicate for r in results)
        await eventually(lambda: len(collector.messages) == 200, "200 frames delivered")
        by_seq = {r.event.seq: event_frame(r.event) for r in results}
        # Pub/sub order is seq order, and each frame is exactly the domain's encoding.
        assert [payload for _, payload in collector.messages] == [by_seq[s] for s in range(1, 201)]
        page = await cluster.ports.log.read(cid, 0, 500)
        assert [e.seq for e in page.events] == list(range(1, 201))
        assert {e.seq: event_frame(e) for e in page.events} == by_seq
    finally:
        await sub.close()
        for c in clients:
            await c.aclose()


async def test_concurrent_retries_of_one_send_yield_one_event(cluster: ClusterPorts) -> None:
    cid = f"c_{uuid.uuid4().hex}"
    results = await asyncio.gather(
        *(cluster.ports.log.append(_draft(cid, "same")) for _ in range(50))
    )
    originals = [r for r in results if not r.duplicate]
    assert len(originals) == 1
    assert {r.event for r in results} == {originals[0].event}
    assert await cluster.ports.log.last_seq(cid) == 1


async def test_duplicate_of_a_trimmed_event_comes_from_the_archive(cluster: ClusterPorts) -> None:
    log, archive = cluster.ports.log, cluster.ports.archive
    cid = f"c_{uuid.uuid4().hex}"
    first = await log.append(_draft(cid, "a"))
    await log.append(_draft(cid, "b"))
    await archive.apply((await log.read(cid, 0, 10)).events)
    await log.trim(cid, 1)
    page = await log.read(cid, 0, 10)
    assert not page.complete
    assert [e.seq for e in page.events] == [2]
    assert (await log.read(cid, 1, 10)).complete
    retry = await log.append(_draft(cid, "a"))
    assert retry.duplicate
    assert retry.event == first.event


async def test_lost_redis_data_continues_seq_above_the_archive(
    cluster: ClusterPorts, fresh_redis_url: str
) -> None:
    log, archive = cluster.ports.log, cluster.ports.archive
    cid = f"c_{uuid.uuid4().hex}"
    for i in range(3):
        await log.append(_draft(cid, f"m{i}"))
    await archive.apply((await log.read(cid, 0, 10)).events)
    async with aioredis.Redis.from_url(fresh_redis_url) as r:
        await r.flushdb()  # what a Redis without its AOF comes back as
    # The archive's watermark was never written (the sweep writes it): its newest event counts.
    assert await archive.watermark(cid) == 0
    assert await log.last_seq(cid) == 3
    assert await log.archived([cid]) == [3]  # the restored head knows 1..3 are archived
    after = await log.append(_draft(cid, "m3"))
    assert after.event.seq == 4
    page = await log.read(cid, 0, 10)
    # Seqs 1..3 are only in the archive now: the log says so instead of returning a gap.
    assert not page.complete
    assert [e.seq for e in page.events] == [4]
    assert await log.backlog() == {cid: 4}


async def test_a_send_that_finds_its_head_lost_is_charged_once(
    cluster: ClusterPorts, fresh_redis_url: str
) -> None:
    """A missing head makes the caller rebuild it and run the script again with the same
    attempt id: one token all the same (the head is checked before the charge, and a re-run of
    a charged attempt is not charged; either alone keeps this)."""
    log = cluster.ports.log
    cid = f"c_{uuid.uuid4().hex}"
    charge = RateCharge(f"send:{uuid.uuid4().hex}", 0.001, 2)
    await log.append(_draft(cid, "m1"), charge=charge)
    async with aioredis.Redis.from_url(fresh_redis_url) as r:
        await r.delete(*DEFAULT_KEYS.log(cid))  # the log lost, the user's bucket kept
    assert (await log.append(_draft(cid, "m2"), charge=charge)).event.seq == 1
    with pytest.raises(RateLimited):  # two tokens, two sends: the rebuild cost nothing
        await log.append(_draft(cid, "m3"), charge=charge)


async def test_read_unarchived_reads_after_each_record_in_one_call(
    cluster: ClusterPorts, fresh_redis_url: str
) -> None:
    """The worker's read: per conversation the log's `archived` record and the events after it
    (`read` from the record); None for a head without a record (from before it existed) and for
    a missing head, which the caller then reads the old way."""
    log = cluster.ports.log
    recorded, unrecorded, missing = (f"c_{uuid.uuid4().hex}" for _ in range(3))
    for cid in (recorded, unrecorded):
        await log.start(cid)
        for i in range(3):
            await log.append(_draft(cid, f"m{i}"))
    await log.mark_archived({recorded: 1})
    async with aioredis.Redis.from_url(fresh_redis_url) as r:
        await r.hdel(f"chat:log:{{{unrecorded}}}:head", "archived")
    hits = await log.read_unarchived([recorded, unrecorded, missing], 500)
    assert hits[1:] == [None, None]
    assert hits[0] is not None
    after, page = hits[0]
    assert after == 1
    assert page == await log.read(recorded, 1, 500)
    assert [e.seq for e in page.events] == [2, 3]
    assert page.complete


async def test_a_take_of_a_few_conversations_reads_them_in_one_script_call(
    cluster: ClusterPorts, fresh_redis_url: str
) -> None:
    """Up to `UNARCHIVED_PER_CALL` conversations are one EVALSHA and nothing else from the
    client: in a redis-py pipeline a script costs a `SCRIPT EXISTS` first, a command more per
    take (issue 14). More than that still comes back whole, in order, in one round trip."""
    log = cluster.ports.log
    cids = [f"c_{uuid.uuid4().hex}" for _ in range(UNARCHIVED_PER_CALL + 1)]
    for n, cid in enumerate(cids):
        await log.start(cid)
        for i in range(n % 3 + 1):
            await log.append(_draft(cid, f"m{i}"))
    await log.mark_archived(dict.fromkeys(cids, 0))
    async with aioredis.Redis.from_url(fresh_redis_url) as r:

        async def calls() -> dict[str, int]:
            stats = await r.info("commandstats")
            return {k: int(v["calls"]) for k, v in stats.items()}

        before = await calls()
        few = await log.read_unarchived(cids[:3], 500)
        after = await calls()
    ran = {k: n - before.get(k, 0) for k, n in after.items() if n != before.get(k, 0)}
    assert ran.pop("cmdstat_info", 0) <= 1  # the first INFO itself
    assert ran.get("cmdstat_evalsha") == 1
    assert "cmdstat_script|exists" not in ran, ran
    assert [len(hit[1].events) for hit in few if hit is not None] == [1, 2, 3]
    every = await log.read_unarchived(cids, 500)
    assert [len(hit[1].events) for hit in every if hit is not None] == [
        n % 3 + 1 for n in range(len(cids))
    ]


async def test_a_failed_xadd_or_a_refusal_leaves_no_dedupe_field(
    cluster: ClusterPorts, fresh_redis_url: str
) -> None:
    """The dedupe field is written with the new head, after the charge and the XADD: a send
    refused or failed writes nothing, so the same send later is new."""
    log = cluster.ports.log
    cid = f"c_{uuid.uuid4().hex}"
    head, stream, dedupe = DEFAULT_KEYS.log(cid)[:3]
    assert (await log.append(_draft(cid, "m1"))).event.seq == 1
    async with aioredis.Redis.from_url(fresh_redis_url) as r:
        # A stream ahead of its head (never the case in service): the XADD of seq 2 fails.
        await r.xadd(stream, {"f": b"{}", "a": b"x"}, id="5-0")
        with pytest.raises(Exception, match="equal or smaller"):
            await log.append(_draft(cid, "m2"))
        assert await _dedupe_fields(r, head) == {b"u1\x00m1"}
        assert await r.hget(head, "seq") == b"1"
        await r.delete(stream)  # (its last id stays 5-0 after an XDEL)
        charge = RateCharge(f"send:{uuid.uuid4().hex}", 0.001, 1)
        assert (await log.append(_draft(cid, "m2"), charge=charge)).event.seq == 2
        with pytest.raises(RateLimited):
            await log.append(_draft(cid, "m3"), charge=charge)
        assert await _dedupe_fields(r, head) == {b"u1\x00m1", b"u1\x00m2"}
        assert await r.hget(head, "u1\x00m2") == b"2"
        assert not await r.exists(dedupe), "a head of this release wrote the separate hash"
    again = await log.append(_draft(cid, "m2"))
    assert again.duplicate and again.event.seq == 2


async def test_trim_times_the_dedupe_fields_it_trims_and_old_entries_still_expire(
    cluster: ClusterPorts, fresh_redis_url: str
) -> None:
    """The append no longer writes `dedupe_ts` (issue 14); a trim times the fields of the
    events it removes. Entries the earlier append script wrote still expire, and a retry of a
    trimmed send inside the window still gets the original (from the archive)."""
    log, archive = cluster.ports.log, cluster.ports.archive
    cid = f"c_{uuid.uuid4().hex}"
    head, stream, _, dedupe_ts = DEFAULT_KEYS.log(cid)
    sent = [(await log.append(_draft(cid, k))).event for k in ("a", "b", "c", "d")]
    await archive.apply(sent)
    async with aioredis.Redis.from_url(fresh_redis_url) as r:
        assert not await r.exists(dedupe_ts), "the append timed its dedupe field"
        # What a trim by the release before leaves: seq 1 gone, the earlier append's entries
        # (scored here as older than the window) for a trimmed and an untrimmed event.
        await r.hset(head, "trimmed", 1)
        await r.xtrim(stream, minid="2-0", approximate=False)
        await r.zadd(dedupe_ts, {"u1\x00a": 1, "u1\x00c": 1})
        await log.trim(cid, 2)
        fields = await _dedupe_fields(r, head)
        assert fields == {b"u1\x00b", b"u1\x00c", b"u1\x00d"}, "the old entry of a did not expire"
        # b is timed at its own ts; c's old entry stays until c is trimmed; d is not timed.
        assert await r.zrange(dedupe_ts, 0, -1, withscores=True) == [
            (b"u1\x00c", 1.0),
            (b"u1\x00b", float(sent[1].ts)),
        ]
    retry = await log.append(_draft(cid, "b"))
    assert retry.duplicate and retry.event == sent[1]
    # Past the window (a log whose window ends in the future: everything is old), a trimmed
    # event's field goes; an untrimmed one's stays, whatever its age.
    client = aioredis.Redis.from_url(fresh_redis_url)
    try:
        aged = RedisEventLog(client, archive.watermark, archive.event, dedupe_window_s=-60)
        await aged.trim(cid, 3)
    finally:
        await client.aclose()
    async with aioredis.Redis.from_url(fresh_redis_url) as r:
        assert await _dedupe_fields(r, head) == {b"u1\x00d"}
        assert await r.zcard(dedupe_ts) == 0
    assert (await log.append(_draft(cid, "a"))).event.seq == 5  # expired: a new send


async def test_a_long_trim_runs_in_chunks_and_times_every_field(
    cluster: ClusterPorts, fresh_redis_url: str
) -> None:
    archive = cluster.ports.archive
    client = aioredis.Redis.from_url(fresh_redis_url)
    log = RedisEventLog(client, archive.watermark, archive.event, trim_chunk=3)
    cid = f"c_{uuid.uuid4().hex}"
    head, _, _, dedupe_ts = DEFAULT_KEYS.log(cid)
    try:
        sent = [(await log.append(_draft(cid, f"m{i}"))).event for i in range(10)]
        await log.trim(cid, 8)
        assert await client.hget(head, "trimmed") == b"8"
        assert [e.seq for e in (await log.read(cid, 0, 20)).events] == [9, 10]
        timed = dict(await client.zrange(dedupe_ts, 0, -1, withscores=True))
        assert timed == {f"u1\x00m{i}".encode(): float(sent[i].ts) for i in range(8)}
    finally:
        await client.aclose()


async def test_a_frame_that_does_not_decode_does_not_stop_the_trim(
    cluster: ClusterPorts, fresh_redis_url: str
) -> None:
    log = cluster.ports.log
    cid = f"c_{uuid.uuid4().hex}"
    head, stream, _, dedupe_ts = DEFAULT_KEYS.log(cid)
    await log.append(_draft(cid, "m1"))
    async with aioredis.Redis.from_url(fresh_redis_url) as r:
        await r.xadd(stream, {"f": b"not json", "a": b"x"}, id="2-0")
        await r.hset(head, "seq", 2)
        await log.trim(cid, 2)
        assert await r.hget(head, "trimmed") == b"2"
        assert await r.xlen(stream) == 0
        assert await r.zrange(dedupe_ts, 0, -1) == [b"u1\x00m1"]


async def test_a_head_of_an_earlier_release_keeps_its_dedupe_until_that_hash_expires(
    cluster: ClusterPorts, fresh_redis_url: str
) -> None:
    """Heads written before dedupe moved into the head (no `layout`) keep answering retries
    from the separate hash; new sends record theirs in the head; once the trim has expired the
    last old field, the head is marked layout 2 and the separate hash is no longer read."""
    log, archive = cluster.ports.log, cluster.ports.archive
    cid = f"c_{uuid.uuid4().hex}"
    head, _, dedupe, _ = DEFAULT_KEYS.log(cid)
    sent = [(await log.append(_draft(cid, k))).event for k in ("a", "b")]
    async with aioredis.Redis.from_url(fresh_redis_url) as r:
        # What the earlier release left: no layout, its fields in the separate hash.
        await r.hdel(head, "layout", "u1\x00a", "u1\x00b")
        await r.hset(dedupe, mapping={"u1\x00a": 1, "u1\x00b": 2})
        retry = await log.append(_draft(cid, "a"))
        assert retry.duplicate and retry.event == sent[0]
        c = (await log.append(_draft(cid, "c"))).event
        assert await r.hget(head, "u1\x00c") == b"3"
        assert not await r.hexists(dedupe, "u1\x00c")
        assert (await log.append(_draft(cid, "c"))).duplicate
        await archive.apply([*sent, c])
        # A log whose window ends in the future: every trimmed field is old. Trimming a only
        # expires a's old field; b's event is still in the log: still the earlier layout.
        aged = RedisEventLog(r, archive.floor, archive.event, dedupe_window_s=-60)
        await aged.trim(cid, 1)
        assert await r.hkeys(dedupe) == [b"u1\x00b"]
        assert await r.hget(head, "layout") is None
        assert (await log.append(_draft(cid, "b"))).duplicate
        await aged.trim(cid, 3)
        assert not await r.exists(dedupe)
        assert not await r.hexists(head, "u1\x00c"), "the head's own field did not expire"
        assert await r.hget(head, "layout") == b"2"
        # From now on the separate hash is not read: a field left there answers nothing.
        await r.hset(dedupe, "u1\x00zz", 1)
        assert (await log.append(_draft(cid, "zz"))).event.seq == 4


async def test_a_new_head_is_at_layout_2(cluster: ClusterPorts, fresh_redis_url: str) -> None:
    cid = f"c_{uuid.uuid4().hex}"
    await cluster.ports.log.start(cid)
    async with aioredis.Redis.from_url(fresh_redis_url) as r:
        assert await r.hget(DEFAULT_KEYS.log(cid)[0], "layout") == b"2"
