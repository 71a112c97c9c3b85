"""Network faults between the components and their stores, on real processes: every
gateway, API and worker reaches Redis, PostgreSQL and the MongoDB-protocol server through
Toxiproxy (scripts/setup.d/35-toxiproxy.sh), which injects, on a schedule with overlaps:
latency, a bandwidth limit, a half-open connection (`timeout` toxic: data stops, the connection
stays up) and TCP resets (`reset_peer`). Clients send at a steady rate throughout. The checker
(`chaos.verify`) then proves: every produced message acked, stored once, in seq order, applied by
every member in that order within the delivery bound of the end of the faults under way, and
archived."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from chat.devcluster import Backing
from tests.multiprocess.chaos import Member, full_history, keep_connected, produce, verify
from tests.multiprocess.conftest import ClusterFactory
from tests.multiprocess.helpers import eventually, watermarks
from tests.servers import FerretServer, PostgresServer, RedisServer, ToxiproxyServer
from tests.support.clients import Api

GROUPS, PER_GROUP = 2, 3
RATE_PER_MEMBER = 1.5
SEND_FOR_S = 40.0
DRAIN_TIMEOUT_S = 60.0

# (start s, length s, proxy, toxic name, type, attributes, stream); overlapping on purpose.
SCHEDULE: list[tuple[float, float, str, str, str, dict[str, int], str]] = [
    (4.0, 6.0, "redis", "slow", "latency", {"latency": 250, "jitter": 100}, "downstream"),
    (7.0, 5.0, "postgres", "slow", "latency", {"latency": 300, "jitter": 100}, "downstream"),
    (13.0, 5.0, "redis", "narrow", "bandwidth", {"rate": 16}, "downstream"),  # KB/s
    (19.0, 4.0, "redis", "halfopen", "timeout", {"timeout": 0}, "upstream"),
    (25.0, 3.0, "postgres", "reset", "reset_peer", {"timeout": 0}, "upstream"),
    (27.0, 5.0, "mongo", "slow", "latency", {"latency": 400, "jitter": 100}, "downstream"),
    (30.0, 3.0, "mongo", "reset", "reset_peer", {"timeout": 0}, "upstream"),
    (33.0, 3.0, "redis", "reset", "reset_peer", {"timeout": 0}, "upstream"),
]


async def test_network_faults_lose_nothing_and_delivery_stays_bounded(
    make_cluster: ClusterFactory,
    toxiproxy: ToxiproxyServer,
    private_redis: RedisServer,
    postgres_server: PostgresServer,
    fresh_postgres_dsn: str,
    ferretdb_server: FerretServer,
    fresh_mongodb_database: str,
) -> None:
    redis_port = toxiproxy.proxy("redis", private_redis.port)
    pg_port = toxiproxy.proxy("postgres", postgres_server.port)
    mongo_port = toxiproxy.proxy("mongo", ferretdb_server.port)
    backing = Backing(
        f"redis://127.0.0.1:{redis_port}/0",
        fresh_postgres_dsn.replace(f":{postgres_server.port}/", f":{pg_port}/"),
        f"mongodb://127.0.0.1:{mongo_port}/",
        fresh_mongodb_database,
    )
    cluster = await asyncio.to_thread(make_cluster, backing, gateways=2, workers=2)
    api = Api(cluster.url)
    members: list[Member] = []
    faults: list[tuple[float, float]] = []
    try:
        for g in range(GROUPS):
            team = [await api.register() for _ in range(PER_GROUP)]
            cid = await api.group(team[0], *team[1:], title=f"network {g}")
            members += [Member(f"g{g}m{i}", a, cid) for i, a in enumerate(team)]
        cids = sorted({m.cid for m in members})
        stop = asyncio.Event()
        t0 = time.monotonic()
        tasks = [
            *(
                asyncio.create_task(keep_connected(m, cluster.ws_url, cluster.url, stop))
                for m in members
            ),
            *(asyncio.create_task(produce(m, RATE_PER_MEMBER, t0 + SEND_FOR_S)) for m in members),
        ]

        async def fault(at: float, length: float, *toxic: object) -> None:
            proxy, name, kind, attributes, stream = toxic
            await asyncio.sleep(max(0.0, t0 + at - time.monotonic()))  # the schedule
            start = time.monotonic()
            await asyncio.to_thread(toxiproxy.add_toxic, proxy, name, kind, attributes, stream)  # type: ignore[arg-type]
            await asyncio.sleep(length)  # the fault's length (schedule)
            await asyncio.to_thread(toxiproxy.remove_toxic, proxy, name)  # type: ignore[arg-type]
            faults.append((start, time.monotonic()))

        try:
            await asyncio.gather(*(fault(at, n, *rest) for at, n, *rest in SCHEDULE))
            deadline = t0 + SEND_FOR_S + DRAIN_TIMEOUT_S
            await _until(
                lambda: time.monotonic() > t0 + SEND_FOR_S and not any(m.pending for m in members),
                deadline,
                "every send acked",
            )
            last = {
                c: max(s for m in members if m.cid == c for s in m.acked.values()) for c in cids
            }
            await _until(
                lambda: all(m.cursor >= last[m.cid] for m in members), deadline, "members caught up"
            )
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)

        stored = {}
        for cid in cids:
            owner = next(m for m in members if m.cid == cid).account
            history = await full_history(api, owner, cid)
            stored[cid] = [(int(h["seq"]), str(h["client_id"])) for h in history]
        print("\nnetwork faults report:")
        print(f"  faults_s: {[(round(a - t0, 1), round(b - t0, 1)) for a, b in sorted(faults)]}")
        print(f"  produced: {sum(m.produced for m in members)}")
        print(f"  acked: {sum(len(m.acked) for m in members)}")
        print(f"  duplicate acks: {sum(m.duplicate_acks for m in members)}")
        print(f"  connections: {sum(m.connections for m in members)}")
        print(f"  error frames: {[dict(m.errors) for m in members]}")
        verify(members, stored, faults)
        await eventually(
            lambda: asyncio.to_thread(
                lambda: watermarks(backing, cids) == {c: len(stored[c]) for c in cids}
            ),
            DRAIN_TIMEOUT_S,
            "archive caught up after the faults",
        )
    finally:
        await api.close()


async def _until(cond: Callable[[], bool], deadline: float, what: str) -> None:
    while not cond():
        assert time.monotonic() < deadline, f"{what}: not within the drain timeout"
        await asyncio.sleep(0.2)


pytestmark = pytest.mark.timeout(240)
