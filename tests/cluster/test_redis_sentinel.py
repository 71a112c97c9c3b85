"""Redis high availability at the store level, on real processes: a primary, a replica and
three Sentinels (tests/servers.py `SentinelGroup`).

- Through Sentinel the stores find the primary, and with `min_replicas=1` an acked append is
  already on the replica when `append` returns (WAIT in the same round trip).
- With the replica stalled (SIGSTOP) nothing is acked: `Unavailable`, and a retry of the same
  send from another client (another gateway) is not acked either, although it is a dedupe hit
  (WAIT only covers the calling connection's own last write, here older than the original; the
  script's no-op rewrite makes it cover the original).
- Nothing the replica lacks is read or published: an event whose WAIT failed is invisible to
  `read`, `last_seq` and subscribers until it is committed (a failover may drop it and give its
  seq to another message, so anyone who saw it would hold a message history lacks); the
  sweep's `settle` commits one whose writer never came back.
- The ack latency cost of WAIT, printed (numbers, not a timed assertion)."""

from __future__ import annotations

import asyncio
import signal
import statistics
import time
import uuid
from collections.abc import AsyncIterator

import orjson
import pytest

from chat.domain.channels import conversation_channel
from chat.domain.errors import RateLimited, Unavailable
from chat.domain.models import Event, EventDraft, EventKind, RateCharge
from chat.stores.cluster.redis_conn import RedisTarget, make_client
from chat.stores.cluster.redis_keys import DEFAULT_KEYS
from chat.stores.cluster.redis_log import RedisEventLog
from tests.servers import SENTINEL_MASTER, RedisServer, SentinelGroup


async def _floor(cid: str) -> int:
    return 0


async def _no_archive(cid: str, seq: int) -> Event | None:
    return None


def _target(group: SentinelGroup) -> RedisTarget:
    return RedisTarget(
        "redis://ignored-with-sentinel:1/0",
        tuple(("127.0.0.1", s.port) for s in group.sentinels),
        SENTINEL_MASTER,
    )


def _replica(group: SentinelGroup) -> RedisServer:
    primary = group.primary()
    return next(s for s in group.servers if s is not primary)


def _on(server: RedisServer, cid: str) -> list[bytes]:
    """Client ids of the events of `cid` stored on this server (read directly from it)."""
    with server.client() as r:
        entries = r.xrange(DEFAULT_KEYS.log(cid)[1])
    return [fields[b"f"] for _, fields in entries]


@pytest.fixture
async def logs(redis_sentinel_group: SentinelGroup) -> AsyncIterator[list[RedisEventLog]]:
    """Two logs on two clients (two gateways), both through Sentinel, WAIT for 1 replica."""
    clients = [make_client(_target(redis_sentinel_group)) for _ in range(2)]
    yield [
        RedisEventLog(c, _floor, _no_archive, min_replicas=1, wait_timeout_ms=300) for c in clients
    ]
    for c in clients:
        await c.aclose()


async def test_an_acked_append_is_already_on_the_replica(
    redis_sentinel_group: SentinelGroup, logs: list[RedisEventLog]
) -> None:
    cid = f"c_{uuid.uuid4().hex}"
    for n in range(20):
        result = await logs[n % 2].append(EventDraft(cid, EventKind.MESSAGE, "u", f"m{n}", "hi"))
        assert result.event.seq == n + 1 and not result.duplicate
        # No polling: the ack itself promises the replica has it.
        assert len(_on(_replica(redis_sentinel_group), cid)) == n + 1


async def test_a_charged_append_takes_its_token_in_the_same_round_trip_as_wait(
    redis_sentinel_group: SentinelGroup, logs: list[RedisEventLog]
) -> None:
    """With replicas required the append script and WAIT share a pipeline: a refused charge
    (nothing written) is `RateLimited`, not a replica shortfall; a charged send is replicated."""
    cid = f"c_{uuid.uuid4().hex}"
    charge = RateCharge(f"send:{uuid.uuid4().hex}", 0.001, 1)
    first = await logs[0].append(EventDraft(cid, EventKind.MESSAGE, "u", "m1", "hi"), charge=charge)
    assert first.event.seq == 1 and len(_on(_replica(redis_sentinel_group), cid)) == 1
    with pytest.raises(RateLimited):
        await logs[1].append(EventDraft(cid, EventKind.MESSAGE, "u", "m2", "hi"), charge=charge)
    assert await logs[1].last_seq(cid) == 1


async def test_nothing_is_acked_while_the_replica_lags(
    redis_sentinel_group: SentinelGroup, logs: list[RedisEventLog]
) -> None:
    cid = f"c_{uuid.uuid4().hex}"
    draft = EventDraft(cid, EventKind.MESSAGE, "u", "once", "hello")
    # The retrying gateway's connection wrote (and was acked by the replica) before the stall:
    # a WAIT for its own last write alone would count the stalled replica.
    await logs[1].append(EventDraft(cid, EventKind.MESSAGE, "u", "warm", "x"))
    replica = _replica(redis_sentinel_group)
    assert replica.proc is not None
    replica.proc.send_signal(signal.SIGSTOP)  # connected, but acknowledges nothing
    try:
        with pytest.raises(Unavailable, match="replicas"):
            await logs[0].append(draft)
        # The client retries through another gateway: a dedupe hit, still not replicated.
        with pytest.raises(Unavailable, match="replicas"):
            await logs[1].append(draft)
    finally:
        replica.proc.send_signal(signal.SIGCONT)
    again = await logs[1].append(draft)
    assert again.duplicate and again.event.seq == 2
    assert len(_on(replica, cid)) == 2


class Channel:
    """A raw subscriber on a conversation's channel, on the primary itself."""

    def __init__(self, group: SentinelGroup, cid: str) -> None:
        self.name = DEFAULT_KEYS.channel(conversation_channel(cid))
        self.client = make_client(_target(group))
        self.pubsub = self.client.pubsub()

    async def __aenter__(self) -> Channel:
        await self.pubsub.subscribe(self.name)
        await self.pubsub.get_message(timeout=5)  # the subscribe confirmation
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.pubsub.aclose()
        await self.client.aclose()

    async def published_so_far(self) -> list[int]:
        """Seqs published on the channel before now: everything up to a probe published now."""
        await self.client.publish(self.name, b"probe")
        seqs: list[int] = []
        async with asyncio.timeout(5):
            while True:
                message = await self.pubsub.get_message(timeout=5)
                if message is None or message["type"] != "message":
                    continue
                if message["data"] == b"probe":
                    return seqs
                seqs.append(Event.from_dict(orjson.loads(message["data"])).seq)


async def test_an_event_the_replica_lacks_is_neither_read_nor_published(
    redis_sentinel_group: SentinelGroup, logs: list[RedisEventLog]
) -> None:
    cid = f"c_{uuid.uuid4().hex}"
    draft = EventDraft(cid, EventKind.MESSAGE, "u", "once", "hello")
    async with Channel(redis_sentinel_group, cid) as channel:
        await logs[0].append(EventDraft(cid, EventKind.MESSAGE, "u", "warm", "x"))
        replica = _replica(redis_sentinel_group)
        assert replica.proc is not None
        replica.proc.send_signal(signal.SIGSTOP)
        try:
            with pytest.raises(Unavailable, match="replicas"):
                await logs[0].append(draft)
            # Written on the primary, but a failover now may drop it: nobody may see it.
            assert [e.seq for e in (await logs[1].read(cid, 0, 10)).events] == [1]
            assert await logs[1].last_seq(cid) == 1
            assert await channel.published_so_far() == [1]
        finally:
            replica.proc.send_signal(signal.SIGCONT)
        again = await logs[1].append(draft)
        assert again.duplicate and again.event.seq == 2
        assert [e.seq for e in (await logs[0].read(cid, 0, 10)).events] == [1, 2]
        assert await channel.published_so_far() == [2]  # once, after the replica had it


async def test_settle_commits_an_event_its_writer_left_behind(
    redis_sentinel_group: SentinelGroup, logs: list[RedisEventLog]
) -> None:
    """The sender got `Unavailable` and never retried (or its process died after WAIT): the
    event is on the primary and, once the replica is back, on the replica too; the sweep's
    `settle` announces it."""
    cid = f"c_{uuid.uuid4().hex}"
    async with Channel(redis_sentinel_group, cid) as channel:
        replica = _replica(redis_sentinel_group)
        assert replica.proc is not None
        replica.proc.send_signal(signal.SIGSTOP)
        try:
            with pytest.raises(Unavailable, match="replicas"):
                await logs[0].append(EventDraft(cid, EventKind.MESSAGE, "u", "left", "x"))
            assert await logs[1].settle() == []  # the replica still lacks it: not yet
        finally:
            replica.proc.send_signal(signal.SIGCONT)
        assert await logs[1].last_seq(cid) == 0
        assert cid in await logs[1].settle()
        assert await logs[1].last_seq(cid) == 1
        assert await channel.published_so_far() == [1]
        assert await logs[0].settle() == []  # nothing left


async def test_wait_ack_latency_cost(redis_sentinel_group: SentinelGroup) -> None:
    """Sequential appends through Sentinel without and with WAIT 1 (printed, median and p99)."""
    client = make_client(_target(redis_sentinel_group))
    replica = _replica(redis_sentinel_group)
    report = {}
    try:
        for replicas in (0, 1):
            log = RedisEventLog(client, _floor, _no_archive, min_replicas=replicas)
            cid = f"c_{uuid.uuid4().hex}"
            took = []
            for n in range(300):
                start = time.perf_counter()
                await log.append(EventDraft(cid, EventKind.MESSAGE, "u", f"m{n}", "x" * 100))
                took.append((time.perf_counter() - start) * 1000)
            took.sort()
            report[replicas] = (statistics.median(took), took[int(len(took) * 0.99)])
            if replicas:
                assert len(_on(replica, cid)) == 300
    finally:
        await client.aclose()
    print(
        "\nack latency through Sentinel (ms, median / p99): "
        f"no WAIT {report[0][0]:.2f} / {report[0][1]:.2f}, "
        f"WAIT 1 {report[1][0]:.2f} / {report[1][1]:.2f}"
    )
