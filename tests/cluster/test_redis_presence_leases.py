"""Gateway leases in Redis presence: a crashed gateway's connections count as gone once its
lease runs out, though their own entries still hold; a drained one's at once; a gateway cut off
from Redis gets its connections back with its lease (chat/stores/cluster/redis_presence.py)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from chat.config import Settings
from chat.domain.models import PresenceState
from chat.stores.cluster.redis_keys import RedisKeys
from chat.stores.cluster.redis_presence import RedisPresence
from tests.servers import RedisServer
from tests.support.fixtures import free_port, serve, with_limits

LONG_S = 300.0  # a connection's own entry: far longer than any test waits


@pytest.fixture
async def client(fresh_redis_url: str) -> AsyncIterator[aioredis.Redis]:
    c = aioredis.Redis.from_url(fresh_redis_url)
    try:
        yield c
    finally:
        await c.aclose()


def _gateway(client: aioredis.Redis) -> RedisPresence:
    # Reads the lease table on every call, so the tests need not wait out a cached read.
    return RedisPresence(client, leases_max_age_s=0.0)


async def _one_connection(
    client: aioredis.Redis, lease_s: float
) -> tuple[RedisPresence, RedisPresence, str]:
    """A gateway holding a lease of `lease_s` and one connection ("c1") of a new user, and
    another process reading presence."""
    gateway, reader = _gateway(client), _gateway(client)
    uid = f"u_{uuid.uuid4().hex}"
    await gateway.renew(lease_s)
    assert await gateway.connect(uid, "c1", LONG_S) == 1
    return gateway, reader, uid


async def _state(reader: RedisPresence, uid: str) -> PresenceState:
    return (await reader.get([uid]))[uid].state


async def _until_state(reader: RedisPresence, uid: str, want: PresenceState) -> None:
    deadline = time.monotonic() + 10
    while (state := await _state(reader, uid)) is not want:
        assert time.monotonic() < deadline, f"still {state}, never {want}"
        await asyncio.sleep(0.05)


async def test_a_crashed_gateways_users_go_offline_when_its_lease_runs_out(
    client: aioredis.Redis,
) -> None:
    crashed, other = _gateway(client), _gateway(client)
    uid = f"u_{uuid.uuid4().hex}"
    await crashed.renew(0.5)
    renewed_ms = time.time() * 1000
    assert await crashed.connect(uid, "c1", LONG_S) == 1
    assert await _state(other, uid) is PresenceState.ONLINE
    # `crashed` renews no more; its connection's own entry holds for minutes.
    await _until_state(other, uid, PresenceState.OFFLINE)
    seen = (await other.get([uid]))[uid].last_seen
    assert seen is not None and renewed_ms + 300 <= seen <= time.time() * 1000 + 50
    # Not counted, so a new connection elsewhere is the user's first: announced online.
    assert await other.connect(uid, "c2", LONG_S) == 1
    assert await other.disconnect(uid, "c2") == 0


async def test_a_gateway_cut_off_from_redis_gets_its_connections_back_with_its_lease(
    client: aioredis.Redis,
) -> None:
    gateway, reader, uid = await _one_connection(client, 0.3)
    await gateway.heartbeat(uid, "c1", PresenceState.IDLE, LONG_S)
    await _until_state(reader, uid, PresenceState.OFFLINE)
    await gateway.renew(30)
    assert await _state(reader, uid) is PresenceState.IDLE  # the state it had, too


async def test_a_drained_gateways_leftover_connections_count_as_gone_at_once(
    client: aioredis.Redis,
) -> None:
    drained, reader, uid = await _one_connection(client, 30)
    assert await _state(reader, uid) is PresenceState.ONLINE
    await drained.release()  # its disconnect never happened (say, Redis was away then)
    assert await _state(reader, uid) is PresenceState.OFFLINE


async def test_a_gateway_counts_its_own_connections_while_its_lease_lapsed(
    client: aioredis.Redis,
) -> None:
    """Its lease ran out (say, Redis was away): its own sockets are still open, so its own
    view keeps them, and the connection limit is not dodged by a lapse."""
    gateway, reader, uid = await _one_connection(client, 30)
    await gateway.release()  # its lease is now in the table, expired
    assert await _state(reader, uid) is PresenceState.OFFLINE
    assert await gateway.connect(uid, "c2", LONG_S) == 2
    assert await _state(gateway, uid) is PresenceState.ONLINE


async def test_a_connection_of_an_earlier_release_counts_by_its_own_expiry(
    client: aioredis.Redis,
) -> None:
    """Members written before leases (no `<process>/` prefix) during a rolling upgrade."""
    reader = _gateway(client)
    uid = f"u_{uuid.uuid4().hex}"
    conns, states = f"chat:presence:{{{uid}}}:conns", f"chat:presence:{{{uid}}}:state"
    expires = int(time.time() * 1000) + 600
    await client.zadd(conns, {"legacy-conn": expires})
    await client.hset(states, "legacy-conn", "online")
    released = _gateway(client)
    await released.renew(30)
    await released.release()  # an expired lease in the table: judged, but not this member's
    assert await _state(reader, uid) is PresenceState.ONLINE
    await _until_state(reader, uid, PresenceState.OFFLINE)
    seen = (await reader.get([uid]))[uid].last_seen
    assert seen == expires


async def test_a_live_gateway_renews_its_lease_not_each_connection(
    private_redis: RedisServer,
) -> None:
    """Only the lease is renewed: the connection's entry, written once, keeps the user online;
    each renewal is one script of six commands, whatever the gateway holds."""
    async with aioredis.Redis.from_url(private_redis.url) as own:
        gateway, reader = _gateway(own), _gateway(own)
        uids = [f"u_{uuid.uuid4().hex}" for _ in range(20)]
        await gateway.renew(0.5)
        for uid in uids:
            await gateway.connect(uid, "c1", LONG_S)
        before = await _calls(own)
        renewals = 0
        deadline = time.monotonic() + 1.5  # three lease lengths: it would have run out
        while time.monotonic() < deadline:
            await gateway.renew(0.5)
            renewals += 1
            await asyncio.sleep(0.1)
        spent = await _calls(own) - before
        assert spent == renewals * 6 + 1, (spent, renewals)  # +1: the INFO of the first read
        assert {p.state for p in (await reader.get(uids)).values()} == {PresenceState.ONLINE}


async def _calls(client: aioredis.Redis) -> int:
    stats = await client.info("commandstats")
    return sum(int(v["calls"]) for v in stats.values())


async def test_a_running_gateway_renews_its_lease_and_its_drain_ends_it(
    cluster_settings: Settings, tmp_path: Path
) -> None:
    """The real gateway process: it holds a lease from its first socket on, renews it every
    heartbeat (its users stay online past two lease lengths), and ends it when it drains."""
    limits = with_limits(heartbeat_interval_s=0.5, presence_ttl_s=1.5)
    srv = await serve(replace(cluster_settings, port=free_port(), limits=limits), worker=False)
    async with aioredis.Redis.from_url(cluster_settings.redis_url) as r:
        try:
            alice = await srv.api.register()
            ws = await srv.ws(alice)
            reader = _gateway(r)
            leases = await _lease_expiries(r)
            assert len(leases) == 1, leases
            first = leases[0]
            await eventually_async(
                lambda: _lease_moved(r, first + 3000), "renewed past two lease lengths"
            )
            assert await _state(reader, alice.id) is PresenceState.ONLINE
            await ws.close()
        finally:
            await srv.stop()
        (expiry,) = await _lease_expiries(r)
        assert expiry <= time.time() * 1000 + 50, "the drained gateway's lease still runs"


async def _lease_expiries(r: aioredis.Redis) -> list[float]:
    leases = await r.zrange("chat:presence:{leases}", 0, -1, withscores=True)
    return [float(score) for _, score in leases]


async def _lease_moved(r: aioredis.Redis, past: float) -> bool:
    leases = await _lease_expiries(r)
    return bool(leases) and leases[0] > past


async def eventually_async(
    check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 10.0
) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, f"timed out after {timeout_s}s waiting for: {what}"
        await asyncio.sleep(0.05)


async def test_after_redis_comes_back_the_gateway_writes_lost_entries_again(
    private_redis: RedisServer, cluster_settings: Settings
) -> None:
    """A restart or failover may lose Redis's last writes: once the bus has reconnected, the
    gateway writes every socket's entry again within a heartbeat, long before the socket's
    own next refresh (15 heartbeats after it connected)."""
    limits = with_limits(heartbeat_interval_s=0.5, presence_ttl_s=1.5)
    settings = replace(
        cluster_settings, redis_url=private_redis.url, port=free_port(), limits=limits
    )
    srv = await serve(settings, worker=False)
    try:
        alice = await srv.api.register()
        ws = await srv.ws(alice)
        own_refresh_due = time.monotonic() + limits.presence_refresh_s
        async with aioredis.Redis.from_url(private_redis.url) as r:
            # What a failover that dropped the connect's writes leaves behind: no entry.
            await r.delete(*RedisKeys().presence(alice.id))
            assert await _state(_gateway(r), alice.id) is PresenceState.OFFLINE
        private_redis.stop()
        private_redis.start()
        async with aioredis.Redis.from_url(private_redis.url) as r:
            reader = _gateway(r)
            while (state := await _state(reader, alice.id)) is not PresenceState.ONLINE:
                assert time.monotonic() < own_refresh_due - 1, f"still {state}"
                await asyncio.sleep(0.05)
        await ws.close()
    finally:
        await srv.stop()
