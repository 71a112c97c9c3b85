"""Sessions, rate limits and presence: the Lua scripts hold under concurrency and real time."""

from __future__ import annotations

import asyncio
import uuid

import redis.asyncio as aioredis

from chat.domain.models import PresenceState
from chat.stores.cluster import ClusterPorts


async def test_concurrent_refreshes_with_one_token_cannot_both_win(cluster: ClusterPorts) -> None:
    sessions = cluster.ports.sessions
    fid = f"f_{uuid.uuid4().hex}"
    await sessions.create(fid, "u1", "h0", 3600)
    outcomes = await asyncio.gather(
        *(sessions.rotate(fid, "h0", f"h1-{i}", 3600) for i in range(20))
    )
    winners = [o for o in outcomes if o.user_id and not o.reused]
    assert len(winners) == 1
    # The first loser presented a just-rotated token: theft, so the family is revoked, and
    # every later one finds it revoked.
    assert sum(o.reused for o in outcomes) == 1
    assert all(o.user_id is None for o in outcomes if not o.reused and o not in winners)
    assert not await sessions.is_active(fid)


async def test_families_expire_with_their_ttl(cluster: ClusterPorts) -> None:
    sessions = cluster.ports.sessions
    fid = f"f_{uuid.uuid4().hex}"
    await sessions.create(fid, "u1", "h0", 1)
    assert await sessions.is_active(fid)
    deadline = asyncio.get_running_loop().time() + 5
    while await sessions.is_active(fid):
        assert asyncio.get_running_loop().time() < deadline, "family outlived its TTL"
        await asyncio.sleep(0.1)
    assert (await sessions.rotate(fid, "h0", "h1", 60)).user_id is None


async def test_rate_limit_burst_holds_across_processes(
    cluster: ClusterPorts, fresh_redis_url: str
) -> None:
    from chat.stores.cluster.redis_ratelimit import RedisRateLimiter

    clients = [aioredis.Redis.from_url(fresh_redis_url) for _ in range(3)]
    limiters = [RedisRateLimiter(c) for c in clients]
    try:
        key = f"send:{uuid.uuid4().hex}"
        # A refill of 0.001/s cannot add a token during the test: exactly `burst` pass.
        waits = await asyncio.gather(*(limiters[i % 3].allow(key, 0.001, 10) for i in range(60)))
        assert sum(1 for w in waits if w == 0.0) == 10
        assert all(w > 0 for w in waits if w != 0.0)
    finally:
        for c in clients:
            await c.aclose()


async def test_a_bucket_is_one_string_a_refusal_writes_nothing_and_old_hashes_are_ignored(
    fresh_redis_url: str,
) -> None:
    """The bucket is a string under a new name (issue 14: GET + SET PX instead of HMGET, HSET,
    PEXPIRE); a hash bucket of the release before, at the old name, neither breaks a take
    (WRONGTYPE) nor counts."""
    from chat.stores.cluster.redis_keys import DEFAULT_KEYS
    from chat.stores.cluster.redis_ratelimit import RedisRateLimiter

    async with aioredis.Redis.from_url(fresh_redis_url) as r:
        key = f"send:{uuid.uuid4().hex}"
        old = f"chat:rate:{{{key}}}"
        await r.hset(old, mapping={"tokens": "0", "at": "9999999999999"})
        limiter = RedisRateLimiter(r)
        assert await limiter.allow(key, 0.001, 2) == 0.0
        bucket = DEFAULT_KEYS.rate(key)
        assert bucket != old and await r.type(bucket) == b"string"
        tokens, at, attempt = (await r.get(bucket)).decode().split(":")
        assert float(tokens) == 1.0 and float(at) > 0 and attempt == ""
        assert 0 < await r.pttl(bucket) <= 1000 * 1000 + 1000  # full again after 1/rate s
        assert await limiter.allow(key, 0.001, 2) == 0.0
        state = await r.get(bucket)
        assert await limiter.allow(key, 0.001, 2) > 0  # empty: refused
        assert await r.get(bucket) == state, "a refusal wrote the bucket"
        assert await r.hgetall(old) == {b"tokens": b"0", b"at": b"9999999999999"}


async def test_presence_keys_go_away_with_a_crashed_gateway(
    cluster: ClusterPorts, fresh_redis_url: str
) -> None:
    presence = cluster.ports.presence
    uid = f"u_{uuid.uuid4().hex}"
    assert await presence.connect(uid, "a", 0.5) == 1
    await presence.heartbeat(uid, "b", PresenceState.IDLE, 0.5)
    assert (await presence.get([uid]))[uid].state is PresenceState.ONLINE
    async with aioredis.Redis.from_url(fresh_redis_url) as r:
        # Nobody calls disconnect: Redis's own key expiry must clean up.
        await asyncio.wait_for(_until_gone(r, f"chat:presence:{{{uid}}}:conns"), 10)
    seen = (await presence.get([uid]))[uid]
    assert seen.state is PresenceState.OFFLINE
    assert seen.last_seen is not None


async def test_refreshed_presence_keys_still_expire_with_a_crashed_gateway(
    cluster: ClusterPorts, fresh_redis_url: str
) -> None:
    """The periodic refresh only extends key TTLs (`GT`); keys it creates itself (for a
    connection swept meanwhile) get one too, so a crashed gateway still leaves nothing."""
    presence = cluster.ports.presence
    uid = f"u_{uuid.uuid4().hex}"
    await presence.heartbeat(uid, "a", None, 0.5)  # no connect: the keys are new
    await presence.connect(uid, "b", 0.5)
    await presence.heartbeat(uid, "b", None, 0.5)
    assert (await presence.get([uid]))[uid].state is PresenceState.ONLINE
    async with aioredis.Redis.from_url(fresh_redis_url) as r:
        for key in (f"chat:presence:{{{uid}}}:conns", f"chat:presence:{{{uid}}}:state"):
            await asyncio.wait_for(_until_gone(r, key), 10)
    assert (await presence.get([uid]))[uid].state is PresenceState.OFFLINE


async def _until_gone(r: aioredis.Redis, key: str) -> None:
    while await r.exists(key):
        await asyncio.sleep(0.05)
