"""Persistence in bulk on the real servers (chat/domain/persistence.py): a burst of sends queues
O(1) batch jobs, not one per conversation; batch jobs running side by side archive every event
exactly once and in order; a claim lost with a crashed worker is recovered by the sweep."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace

import dramatiq
import pytest
import redis

from chat.app.runtime import Runtime, open_runtime
from chat.config import Settings
from chat.domain import persistence
from chat.domain.accounts import Principal
from chat.domain.models import EventDraft, EventKind
from chat.domain.persistence import BATCH_CONVERSATIONS, Lag
from chat.stores.cluster.redis_keys import RedisKeys
from tests.support.archived import archived_upto
from tests.support.fixtures import FAST_HASHER
from tests.support.persist_cost import make_rooms


@pytest.fixture
async def rt(cluster_settings: Settings) -> AsyncIterator[Runtime]:
    limits = replace(cluster_settings.limits, send_burst=10**6, send_rate_per_s=10**6)
    runtime = await open_runtime(
        replace(cluster_settings, sweep_interval_s=3600.0, limits=limits), hasher=FAST_HASHER
    )
    yield runtime
    await runtime.close()


async def _archived(rt: Runtime, cids: list[str]) -> None:
    """Every conversation's archive holds its whole log: seq 1..last, once each, in order."""
    deadline = time.monotonic() + 30
    for cid in cids:
        last = await rt.chat.messaging.last_seq(cid)
        while await archived_upto(rt.chat, cid) < last:
            assert time.monotonic() < deadline, f"{cid} was never archived"
            await asyncio.sleep(0.05)
        events = await rt.chat.ports.archive.events(cid, 0, 10_000)
        assert [e.seq for e in events] == list(range(1, last + 1)), cid
        logged = (await rt.chat.ports.log.read(cid, 0, 10_000)).events
        assert [(e.seq, e.body) for e in events] == [(e.seq, e.body) for e in logged]


async def _send(rt: Runtime, rooms: tuple[list[str], list[Principal]], per_room: int) -> None:
    cids, senders = rooms
    await asyncio.gather(
        *(
            rt.chat.messaging.send(who, cid, f"k{i}", f"{cid} #{i}")
            for cid, who in zip(cids, senders, strict=True)
            for i in range(per_room)
        )
    )


def _worker(rt: Runtime) -> dramatiq.Worker:
    worker = dramatiq.Worker(rt.broker, worker_threads=2, worker_timeout=100)
    worker.start()
    return worker


async def test_a_burst_of_sends_queues_one_job_not_one_per_conversation(rt: Runtime) -> None:
    rooms = await make_rooms(rt.chat, 20, 2)
    worker = _worker(rt)
    try:
        before = rt.queue.enqueued
        await _send(rt, rooms, 5)  # 100 sends in 20 conversations, all at once
        await _archived(rt, rooms[0])
        # The first send's job, and at most a couple of continuations for sends that landed
        # while it ran (one per conversation before: 20 or more).
        assert rt.queue.enqueued - before <= 3, rt.queue.enqueued - before
    finally:
        await asyncio.to_thread(worker.stop, 5000)


async def test_concurrent_batch_jobs_archive_everything_once(rt: Runtime) -> None:
    rooms = await make_rooms(rt.chat, 12, 2)
    persister = rt.chat.messaging.persister

    async def worker_loop(stop: asyncio.Event) -> None:
        while not stop.is_set():
            await persister.run(None)  # as several worker threads would, side by side
            await asyncio.sleep(0)

    stop = asyncio.Event()
    loops = [asyncio.create_task(worker_loop(stop)) for _ in range(3)]
    try:
        for _ in range(4):
            await _send(rt, rooms, 5)
        stop.set()
        await asyncio.gather(*loops)
    finally:
        stop.set()
        for task in loops:
            task.cancel()
    await persister.run(None)  # whatever the loops left dirty when they stopped
    await _archived(rt, rooms[0])


async def test_a_claim_lost_with_a_crashed_worker_is_recovered_by_the_sweep(rt: Runtime) -> None:
    rooms = await make_rooms(rt.chat, 3, 2)
    await _send(rt, rooms, 4)  # no worker yet: the job waits in the queue
    # A worker took the dirty conversations and died before archiving them.
    assert sorted(await rt.chat.ports.log.take_dirty(100)) == sorted(rooms[0])
    worker = _worker(rt)
    try:
        await asyncio.to_thread(rt.broker.join, "persist", timeout=10_000)
        marks = await rt.chat.messaging.persister.progress(rooms[0])
        assert set(marks.values()) == {0}, "archived without the sweep: nothing was tested"
        await asyncio.to_thread(rt.actors.sweep.fn)
        await _archived(rt, rooms[0])
    finally:
        await asyncio.to_thread(worker.stop, 5000)


async def test_a_job_queued_by_the_previous_release_is_handed_to_the_batch_path(
    rt: Runtime,
) -> None:
    """During a rolling upgrade an old sender queues `persist_conversation(cid)`."""
    rooms = await make_rooms(rt.chat, 1, 2)
    cid, who = rooms[0][0], rooms[1][0]
    appended = await rt.chat.ports.log.append(
        EventDraft(cid, EventKind.MESSAGE, who.user.id, "old", "from an old gateway")
    )
    # What an old gateway leaves: an event, no dirty mark, no schedule; its own job instead.
    assert appended.persist_job is not None
    await rt.chat.ports.log.release_persist(appended.persist_job)
    assert await rt.chat.ports.log.take_dirty(10) == [cid]
    worker = _worker(rt)
    try:
        await asyncio.to_thread(rt.actors.legacy_persist.send, cid)
        await _archived(rt, [cid])
    finally:
        await asyncio.to_thread(worker.stop, 5000)


async def test_a_backlog_brings_in_the_rest_of_the_pool(rt: Runtime) -> None:
    """A take that comes back full queues one helper job, so more workers drain a backlog."""
    rooms = await make_rooms(rt.chat, BATCH_CONVERSATIONS + 6, 1)
    for cid, who in zip(*rooms, strict=True):
        await rt.chat.messaging.send(who, cid, "k", "backlog")
    before = rt.queue.enqueued
    done = await rt.chat.messaging.persister.run(None)  # no worker: the helper stays queued
    assert done.conversations == BATCH_CONVERSATIONS + 6
    assert rt.queue.enqueued - before == 1, "no helper was queued for the backlog"
    await _archived(rt, rooms[0])


async def test_a_busy_conversation_caught_up_at_each_sweep_costs_no_watermark_writes(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sends between sweeps, each sweep finding the conversation archived: its watermark is not
    copied every sweep (on FerretDB a command per conversation per sweep: half the MongoDB
    round trips of rooms of 10 at 100 msg/s, issue 14), but it is once its progress crosses a
    `WATERMARK_STEP`, so it never lags without bound; once quiet it is copied, and after that
    a sweep does not read it from the archive again."""
    monkeypatch.setattr(persistence, "WATERMARK_STEP", 5)
    rooms = await make_rooms(rt.chat, 1, 2)
    cid, who = rooms[0][0], rooms[1][0]
    persister, archive = rt.chat.messaging.persister, rt.chat.ports.archive
    for n in range(4):
        await rt.chat.messaging.send(who, cid, f"busy-{n}", f"message {n}")
        await persister.run(None)
        assert await persister.sweep() == {}
    assert await archive.watermarks([cid]) == {cid: 0}
    await rt.chat.messaging.send(who, cid, "busy-4", "message 4")  # seq 5: crosses the step
    await persister.run(None)
    await persister.sweep()
    assert await archive.watermarks([cid]) == {cid: 5}
    # Quiet from here: copied once it stays put for a sweep, then not even read again.
    await rt.chat.messaging.send(who, cid, "busy-5", "message 5")
    await persister.run(None)
    await persister.sweep()
    await persister.sweep()
    assert await archive.watermarks([cid]) == {cid: 6}
    reads = 0
    real_watermarks = archive.watermarks

    async def counted(cids: Sequence[str]) -> dict[str, int]:
        nonlocal reads
        reads += 1
        return await real_watermarks(cids)

    monkeypatch.setattr(archive, "watermarks", counted)
    await persister.sweep()
    await persister.sweep()
    assert reads == 0, "a quiet conversation's watermark was read again at every sweep"


async def test_a_sweep_reads_the_heads_once_not_a_last_seq_per_conversation(
    rt: Runtime, cluster_settings: Settings
) -> None:
    """The sweep learns each conversation's last seq from the backlog's one pipelined read of
    the heads: it made a `last_seq` round trip per conversation (every conversation the log
    holds, every sweep interval, in turn) before (issue 14)."""
    cids, _ = await make_rooms(rt.chat, 4, 2)
    await _send(rt, (cids, _), 2)
    persister = rt.chat.messaging.persister
    client = redis.Redis.from_url(cluster_settings.redis_url)
    try:
        before = client.info("commandstats").get("cmdstat_hmget", {}).get("calls", 0)
        behind = await persister.sweep()
        after = client.info("commandstats").get("cmdstat_hmget", {}).get("calls", 0)
        heads = len(client.smembers(RedisKeys(cluster_settings.redis_key_prefix).backlog))  # type: ignore[arg-type]
    finally:
        client.close()
    assert set(cids) <= set(behind)
    assert all(lag == (0, 2) for cid, lag in behind.items() if cid in cids)
    assert after - before == heads


async def test_progress_is_recorded_in_the_log_and_copied_to_the_archive_by_the_sweep(
    rt: Runtime, cluster_settings: Settings
) -> None:
    """A job writes its progress into the log's heads (one script call), not MongoDB's
    watermarks; the sweep copies it there. The record only moves up, never creates a head, and
    a head without one (written before it existed) falls back to the archive's watermark."""
    rooms = await make_rooms(rt.chat, 2, 2)
    cids = rooms[0]
    await _send(rt, rooms, 3)
    persister = rt.chat.messaging.persister
    await persister.run(None)
    log, archive = rt.chat.ports.log, rt.chat.ports.archive
    assert await log.archived(cids) == [3, 3]
    assert await archive.watermarks(cids) == dict.fromkeys(cids, 0)
    await persister.sweep()  # the first sight of them: not known to be quiet yet
    assert await archive.watermarks(cids) == dict.fromkeys(cids, 0)
    await persister.sweep()
    assert await archive.watermarks(cids) == dict.fromkeys(cids, 3)
    # A conversation still being archived keeps its watermark until it is quiet for a sweep:
    # copying it each sweep was a MongoDB command per busy conversation (issue 14).
    await rt.chat.messaging.send(rooms[1][0], cids[0], "busy", "fourth")
    await persister.run(None)
    await rt.chat.messaging.send(rooms[1][0], cids[0], "busier", "fifth")
    assert await log.archived(cids) == [4, 3]
    assert await persister.sweep() == {cids[0]: Lag(archived=4, last=5)}
    assert await archive.watermarks(cids) == dict.fromkeys(cids, 3)
    await persister.run(None)
    await persister.sweep()  # caught up, but it moved since the last sweep
    assert await archive.watermarks(cids) == dict.fromkeys(cids, 3)
    await persister.sweep()
    assert await archive.watermarks(cids) == {cids[0]: 5, cids[1]: 3}

    await log.mark_archived({cids[0]: 1, "c_never_written": 5})  # older; and no such head
    assert await log.archived([cids[0], "c_never_written"]) == [5, None]
    head = RedisKeys(cluster_settings.redis_key_prefix).log(cids[1])[0]
    client = redis.Redis.from_url(cluster_settings.redis_url)
    try:
        assert not client.exists(
            RedisKeys(cluster_settings.redis_key_prefix).log("c_never_written")[0]
        )
        client.hdel(head, "archived")  # as a head from the previous release has it
    finally:
        client.close()
    assert await persister.progress([cids[1]]) == {cids[1]: 3}  # the archive's watermark
    for cid, who in zip(*rooms, strict=True):
        await rt.chat.messaging.send(who, cid, "one-more", "sixth")
    await persister.run(None)
    assert await log.archived(cids) == [6, 4]


async def test_a_batch_job_skips_the_delay_queue_and_waits_out_its_linger_on_the_worker(
    cluster_settings: Settings,
) -> None:
    """The job is sent at once to `persist` (a delayed message's detour through `persist.DQ`
    costs some 30 Redis commands, chat/worker/queue.py) and waits on its worker thread until
    the linger after it was sent is over, so the burst of that window still shares it."""
    linger_s = 0.4
    limits = replace(cluster_settings.limits, send_burst=10**6, send_rate_per_s=10**6)
    runtime = await open_runtime(
        replace(
            cluster_settings,
            persist_linger_ms=round(linger_s * 1000),
            sweep_interval_s=3600.0,
            limits=limits,
        ),
        hasher=FAST_HASHER,
    )
    client = redis.Redis.from_url(cluster_settings.redis_url)
    namespace = RedisKeys(cluster_settings.redis_key_prefix).dramatiq_namespace
    try:
        rooms = await make_rooms(runtime.chat, 3, 2)
        client.delete(f"{namespace}:persist", f"{namespace}:persist.DQ")
        sent = time.monotonic()
        await _send(runtime, rooms, 2)
        assert client.llen(f"{namespace}:persist") == 1
        assert client.llen(f"{namespace}:persist.DQ") == 0
        worker = _worker(runtime)
        try:
            await _archived(runtime, rooms[0])
            # Dramatiq stamps the message in whole milliseconds.
            assert time.monotonic() - sent >= linger_s - 0.002
            assert runtime.queue.enqueued <= 2  # the burst's job, and maybe one continuation
        finally:
            await asyncio.to_thread(worker.stop, 5000)
    finally:
        client.close()
        await runtime.close()


async def test_a_chains_job_carries_it_on_itself_a_linger_apart(
    cluster_settings: Settings,
) -> None:
    """While sends keep coming, one job archives them a linger apart on its thread instead of
    queueing a job per linger (each cost Dramatiq a send, a fetch, an ack and the polls after:
    chat/worker/actors.py, `persist_batch`)."""
    limits = replace(cluster_settings.limits, send_burst=10**6, send_rate_per_s=10**6)
    runtime = await open_runtime(
        replace(cluster_settings, persist_linger_ms=100, sweep_interval_s=3600.0, limits=limits),
        hasher=FAST_HASHER,
    )
    try:
        cids, senders = await make_rooms(runtime.chat, 2, 2)
        worker = _worker(runtime)
        try:
            before = runtime.queue.enqueued
            for i in range(30):  # a send every 30 ms for about a second: ten lingers or so
                who, cid = senders[i % 2], cids[i % 2]
                await runtime.chat.messaging.send(who, cid, f"k{i}", f"paced {i}")
                await asyncio.sleep(0.03)
            await _archived(runtime, cids)
            # The first send's job carried the chain on (one per linger before: ten or so); a
            # second one only if the chain paused between two sends.
            assert runtime.queue.enqueued - before <= 2, runtime.queue.enqueued - before
        finally:
            await asyncio.to_thread(worker.stop, 5000)
    finally:
        await runtime.close()
