"""Chaos: 8 clients in two groups send at a steady rate for about a minute through haproxy
while a gateway and a worker are SIGKILLed, Redis is SIGKILLed and restarted 3 s later, and the
MongoDB-protocol server is SIGKILLed and started again 30 s later. Clients reconnect, resume
and retry unacked sends with the same client_id. Then the checker proves, per conversation:
every acked message is stored exactly once (API history and the MongoDB archive), every member
applied every message exactly once in seq order with no gap, every member applied every acked
message within `DELIVERY_BOUND_S` of its ack or of the end of the delivery fault (gateway or
Redis down) under way, and chat stayed live while MongoDB was down (the persistence lag grew,
then drained to zero; the MongoDB outage is no excuse for late delivery: guarantee 5)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pymongo
import pytest

from tests.multiprocess.chaos import (
    DELIVERY_BOUND_S,
    Member,
    full_history,
    keep_connected,
    late_deliveries,
    produce,
    produce_at,
)
from tests.multiprocess.conftest import ClusterFactory
from tests.servers import RedisServer
from tests.support.clients import Api
from tools.devcluster.cluster import AppCluster, Backing
from tools.harness.supervisor import Proc

MEMBERS = 8
GROUP = 4
RATE_PER_MEMBER = 1.5  # messages/s; 12 messages/s in all
SEND_FOR_S = 62.0
# (seconds after the first send, action)
KILL_GATEWAY_AT = 6.0
KILL_WORKER_AT = 12.0
RESTART_REDIS_AT = 18.0
REDIS_DOWN_FOR_S = 3.0  # long enough for the gateways' re-subscribe backoff to grow
MONGO_DOWN_AT = 26.0
MONGO_DOWN_FOR_S = 30.0
DRAIN_TIMEOUT_S = 90.0
QUIET = 2
"""Members of a third, quiet conversation: a few messages just after Redis is back (some sent
before the gateways re-subscribed), then silence for longer than the delivery bound."""
QUIET_SENDS_AFTER_REDIS_S = [0.05, 0.15, 0.3, 0.5]


@dataclass
class Lag:
    """Persistence lag = Σ over conversations of (log last_seq - archive watermark)."""

    samples: list[tuple[float, int]] = field(default_factory=list)
    watermarks: dict[str, int] = field(default_factory=dict)

    def peak(self, start: float, end: float) -> int:
        return max((lag for t, lag in self.samples if start <= t <= end), default=0)


async def sample_lag(
    redis: RedisServer, backing: Backing, cids: list[str], lag: Lag, stop: asyncio.Event
) -> None:
    """Heads from Redis twice a second; watermarks from MongoDB as they can be read (the last
    known one while MongoDB is down, which is exactly what the archive holds)."""
    mongo: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
        backing.mongodb_uri,
        serverSelectionTimeoutMS=500,
        connectTimeoutMS=500,
        socketTimeoutMS=5000,  # a hung read fails this sampler's read, never the test's bound
    )

    def read_watermarks() -> None:
        with contextlib.suppress(pymongo.errors.PyMongoError):
            docs = mongo[backing.mongodb_database]["watermarks"].find({"_id": {"$in": cids}})
            lag.watermarks.update({str(d["_id"]): int(str(d["seq"])) for d in docs})

    def heads() -> list[int] | None:
        try:
            with redis.client() as r:
                return [int(r.hget(f"chat:log:{{{c}}}:head", "seq") or 0) for c in cids]
        except Exception:
            return None

    async def watch_archive() -> None:
        while not stop.is_set():
            await asyncio.to_thread(read_watermarks)
            await asyncio.sleep(0.25)  # polling period

    archive = asyncio.create_task(watch_archive())
    try:
        while not stop.is_set():
            found = await asyncio.to_thread(heads)
            if found is not None:
                value = sum(h - lag.watermarks.get(c, 0) for c, h in zip(cids, found, strict=True))
                lag.samples.append((time.monotonic(), value))
            await asyncio.sleep(0.5)  # sampling period, not synchronisation
    finally:
        await archive
        mongo.close()


async def test_no_acked_message_lost_or_duplicated_under_chaos(
    make_cluster: ClusterFactory,
    private_redis: RedisServer,
    fresh_postgres_dsn: str,
    ferretdb_on_postgres: Proc,
    fresh_mongodb_database: str,
) -> None:
    backing = Backing(
        private_redis.url,
        fresh_postgres_dsn,
        f"mongodb://127.0.0.1:{ferretdb_on_postgres.port}/",
        fresh_mongodb_database,
    )
    cluster = await asyncio.to_thread(make_cluster, backing, gateways=2, workers=2)
    api = Api(cluster.url)
    try:
        await _chaos(cluster, api, backing, private_redis, ferretdb_on_postgres)
    finally:
        await api.close()


async def _chaos(
    cluster: AppCluster, api: Api, backing: Backing, redis: RedisServer, ferret: Proc
) -> None:
    accounts = [await api.register() for _ in range(MEMBERS)]
    members: list[Member] = []
    for g in range(0, MEMBERS, GROUP):
        team = accounts[g : g + GROUP]
        cid = await api.group(team[0], *team[1:], title=f"chaos {g // GROUP}")
        members += [Member(f"m{g + i}", a, cid) for i, a in enumerate(team)]
    quiet_team = [await api.register() for _ in range(QUIET)]
    quiet_cid = await api.group(quiet_team[0], *quiet_team[1:], title="chaos quiet")
    quiet = [Member(f"q{i}", a, quiet_cid) for i, a in enumerate(quiet_team)]
    busy = list(members)
    members += quiet
    cids = sorted({m.cid for m in members})

    stop_clients, stop_lag = asyncio.Event(), asyncio.Event()
    lag = Lag()
    t0 = time.monotonic()
    tasks = [
        *(
            asyncio.create_task(keep_connected(m, cluster.ws_url, cluster.url, stop_clients))
            for m in members
        ),
        *(asyncio.create_task(produce(m, RATE_PER_MEMBER, t0 + SEND_FOR_S)) for m in busy),
        asyncio.create_task(
            produce_at(
                quiet[0],
                t0,
                [RESTART_REDIS_AT + REDIS_DOWN_FOR_S + d for d in QUIET_SENDS_AFTER_REDIS_S],
            )
        ),
        asyncio.create_task(sample_lag(redis, backing, cids, lag, stop_lag)),
    ]
    timeline: dict[str, float] = {}
    faults: list[tuple[float, float]] = []  # (start, end) of each fault that may delay delivery

    async def at(
        offset: float,
        name: str,
        action: Callable[[], Awaitable[object]],
        delays_delivery: bool = False,
    ) -> None:
        await asyncio.sleep(max(0.0, t0 + offset - time.monotonic()))  # the schedule
        start = time.monotonic()
        timeline[name] = start - t0
        await action()
        if delays_delivery:
            faults.append((start, time.monotonic()))

    gateway, worker = cluster.ws[0], cluster.worker[0]

    async def kill_and_restart_gateway() -> None:
        await asyncio.to_thread(gateway.kill)
        await asyncio.to_thread(gateway.start)  # as a Deployment would, on the same port

    async def kill_and_restart_redis() -> None:
        await asyncio.to_thread(redis.kill)
        await asyncio.sleep(REDIS_DOWN_FOR_S)  # the outage's length (schedule)
        await asyncio.to_thread(redis.start)  # same port, same AOF

    try:
        await at(KILL_GATEWAY_AT, "SIGKILL ws0 (restarted)", kill_and_restart_gateway, True)
        await at(KILL_WORKER_AT, "SIGKILL worker0", lambda: asyncio.to_thread(worker.kill))
        await at(
            RESTART_REDIS_AT,
            "SIGKILL Redis (restarted 3 s later)",
            kill_and_restart_redis,
            True,
        )
        await at(MONGO_DOWN_AT, "SIGKILL FerretDB", lambda: asyncio.to_thread(ferret.kill))
        await at(
            MONGO_DOWN_AT + MONGO_DOWN_FOR_S,
            "start FerretDB",
            lambda: asyncio.to_thread(ferret.start),  # same port, same PostgreSQL data
        )

        # Sending ends; every pending send gets acked, then every member catches up and the
        # archive catches up with the log (all bounded).
        deadline = time.monotonic() + SEND_FOR_S + DRAIN_TIMEOUT_S - (time.monotonic() - t0)
        await _until(
            lambda: (
                all(m.produced and not m.pending for m in busy)
                and not quiet[0].pending
                and time.monotonic() > t0 + SEND_FOR_S
            ),
            deadline,
            "every send acked",
        )
        last = {
            cid: max(s for m in members if m.cid == cid for s in m.acked.values()) for cid in cids
        }
        await _until(
            lambda: all(m.cursor >= last[m.cid] for m in members),
            deadline,
            "every member caught up",
        )
        await _until(
            lambda: (
                bool(lag.samples)
                and lag.samples[-1][1] == 0
                and all(lag.watermarks.get(c, 0) >= last[c] for c in cids)
            ),
            deadline,
            "archive drained",
        )
    finally:
        stop_clients.set()
        stop_lag.set()
        await asyncio.gather(*tasks, return_exceptions=True)

    await _check(members, cids, api, backing, lag, timeline, faults, t0)


async def _until(cond: Callable[[], bool], deadline: float, what: str) -> None:
    while not cond():
        assert time.monotonic() < deadline, f"{what}: not within the drain timeout"
        await asyncio.sleep(0.2)


async def _check(
    members: list[Member],
    cids: list[str],
    api: Api,
    backing: Backing,
    lag: Lag,
    timeline: dict[str, float],
    faults: list[tuple[float, float]],
    t0: float,
) -> None:
    by_cid = {cid: [m for m in members if m.cid == cid] for cid in cids}
    acked = {cid: {c: s for m in by_cid[cid] for c, s in m.acked.items()} for cid in cids}
    stored: dict[str, list[tuple[int, str]]] = {}
    for cid in cids:
        history = await full_history(api, by_cid[cid][0].account, cid)
        stored[cid] = [(int(h["seq"]), str(h["client_id"])) for h in history]
    with pymongo.MongoClient(backing.mongodb_uri, serverSelectionTimeoutMS=3000) as mongo:
        archived = {
            cid: sorted(
                (int(d["seq"]), str(d["client_id"]))
                for d in mongo[backing.mongodb_database]["messages"].find({"conversation_id": cid})
            )
            for cid in cids
        }

    mongo_down = timeline["SIGKILL FerretDB"] + t0, timeline["start FerretDB"] + t0
    acks_while_down = sum(
        1 for m in members for t in m.ack_times if mongo_down[0] < t < mongo_down[1]
    )
    late, worst_quiet = late_deliveries(members, faults)
    report = {
        "timeline_s": {k: round(v, 1) for k, v in timeline.items()},
        "delivery faults_s": [(round(s - t0, 1), round(e - t0, 1)) for s, e in faults],
        "produced": sum(m.produced for m in members),
        "acked": sum(len(m.acked) for m in members),
        "duplicate_acks (retries answered from dedupe)": sum(m.duplicate_acks for m in members),
        "stored (API history)": sum(len(v) for v in stored.values()),
        "archived (MongoDB)": sum(len(v) for v in archived.values()),
        "applied by members": sum(len(m.applied) for m in members),
        "early frames": sum(m.early for m in members),
        "redelivered frames": sum(m.redelivered for m in members),
        "not_recoverable": sum(m.not_recoverable for m in members),
        "connections": sum(m.connections for m in members),
        "failed connects": sum(m.failed_connects for m in members),
        "close codes": dict(
            sum((m.close_codes for m in members), start=type(members[0].close_codes)())
        ),
        "error frames": dict(sum((m.errors for m in members), start=type(members[0].errors)())),
        "acks while MongoDB was down": acks_while_down,
        "peak persistence lag while MongoDB was down": lag.peak(*mongo_down),
        "persistence lag at the end": lag.samples[-1][1],
        "worst ack-to-apply delay outside faults_s": round(worst_quiet, 2),
        f"applied later than the {DELIVERY_BOUND_S}s bound": len(late),
    }
    print("\nchaos report:")
    for key, value in report.items():
        print(f"  {key}: {value}")

    for cid in cids:
        seqs = [s for s, _ in stored[cid]]
        client_ids = [c for _, c in stored[cid]]
        # Stored exactly once, no seq gap, and exactly what was acked at the acked seq.
        assert seqs == list(range(1, len(seqs) + 1)), f"{cid}: seq gap in history"
        assert len(set(client_ids)) == len(client_ids), f"{cid}: a client_id stored twice"
        assert dict(zip(client_ids, seqs, strict=True)) == acked[cid], f"{cid}: history != acks"
        assert archived[cid] == stored[cid], f"{cid}: archive != history"
        for m in by_cid[cid]:
            assert m.applied == stored[cid], f"{m.name}: applied stream != history"
    for m in members:
        assert not m.ack_conflicts, f"{m.name}: one client_id acked with two seqs"
        assert m.not_recoverable == 0, f"{m.name}: not_recoverable"
        # A send may meet Redis down (`dependency_unavailable`, retried with the same id);
        # nothing else is acceptable (an `internal` here was a bug: test_redis_restart_ack.py).
        unexpected = set(m.errors) - {"dependency_unavailable"}
        assert not unexpected, f"{m.name}: error frames {unexpected}"
    assert report["produced"] == report["acked"] == report["stored (API history)"]
    # Liveness: every acked message reached every member within the bound (issue 12 item 2).
    assert not late, f"late deliveries (first 5 of {len(late)}): {late[:5]}"
    # Chat stayed live while MongoDB was down, and persistence lag grew then drained.
    assert acks_while_down >= RATE_PER_MEMBER * MEMBERS * MONGO_DOWN_FOR_S * 0.5
    assert report["peak persistence lag while MongoDB was down"] >= acks_while_down * 0.5
    assert report["persistence lag at the end"] == 0


pytestmark = pytest.mark.timeout(280)
