"""Network faults between the components and their stores, on real processes: every
gateway, API and worker reaches Redis, PostgreSQL and the MongoDB-protocol server through
Toxiproxy (scripts/setup.d/35-toxiproxy.sh), which injects, on a schedule with overlaps:
latency, a bandwidth limit, a half-open connection (`timeout` toxic: data stops, the connection
stays up) and TCP resets (`reset_peer`), plus SIGKILLs of gateways and workers (restarted after
a while). The schedule is random per seed (`CHAOS_SEEDS`, default two fixed seeds) with every
toxic kind at least once, overlapping; `CHAOS_SOAK_S` lengthens the run (a soak, by hand), with
proportionally more faults. Clients send at a steady rate throughout. The checker
(`chaos.verify`) then proves: every produced message acked, stored once, in seq order, applied by
every member in that order within the delivery bound of the end of the faults under way, and
archived."""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.multiprocess.chaos import Member, full_history, keep_connected, produce, verify
from tests.multiprocess.conftest import ClusterFactory
from tests.multiprocess.helpers import eventually, watermarks
from tests.servers import FerretServer, PostgresServer, RedisServer, ToxiproxyServer
from tests.support.clients import Api
from tools.devcluster.cluster import Backing
from tools.harness.supervisor import ChildFailed, Proc

GROUPS, PER_GROUP = 2, 3
RATE_PER_MEMBER = 1.5
SEND_FOR_S = float(os.environ.get("CHAOS_SOAK_S", "18"))
"""How long clients send while faults run: short in CI; CHAOS_SOAK_S=600 for a soak by hand."""
SEEDS = [int(s) for s in os.environ.get("CHAOS_SEEDS", "1,2").split(",")]
"""One run per seed; a failing run names its seed, and CHAOS_SEEDS=<it> replays its schedule."""
DRAIN_TIMEOUT_S = 60.0
OP_EVERY = 5  # every 5th frame of a member edits or deletes one of its messages
RESTART_ATTEMPTS = 20
FAULTS_PER_S = 0.4  # in all; at least one of each toxic kind and one process kill

PROXIES = ("redis", "postgres", "mongo")


def _toxic(kind: str, r: random.Random) -> tuple[dict[str, int], str]:
    """A toxic's attributes and direction: `timeout` 0 holds data with the connection up (a
    half-open peer); `reset_peer` 0 resets the connection at once."""
    if kind == "latency":
        return {"latency": r.randint(100, 400), "jitter": r.randint(0, 100)}, "downstream"
    if kind == "bandwidth":
        return {"rate": r.randint(8, 64)}, "downstream"  # KB/s
    return {"timeout": 0}, "upstream"


@dataclass(frozen=True)
class Fault:
    at: float  # seconds after the first send
    length: float
    kind: str  # a Toxiproxy toxic type, or "kill" (SIGKILL a process, start it after `length`)
    target: str  # a proxy name, or "ws0", "ws1", "worker0", "worker1"
    attributes: dict[str, int]
    stream: str


def random_schedule(seed: int, send_for_s: float) -> list[Fault]:
    """Every toxic kind and a process kill at least once (the half-open one on Redis, whose
    pub/sub connections carry live delivery), then more faults of any kind on any target, at
    random times and lengths: they overlap."""
    r = random.Random(seed)
    kinds = ["latency", "bandwidth", "timeout", "reset_peer", "kill"]
    chosen: list[tuple[str, str | None]] = [(k, "redis" if k == "timeout" else None) for k in kinds]
    extra = max(0, int(send_for_s * FAULTS_PER_S) - len(kinds))
    chosen += [(r.choice(kinds), None) for _ in range(extra)]
    faults = []
    for kind, pinned in chosen:
        at, length = r.uniform(1.0, max(1.0, send_for_s - 5.0)), r.uniform(1.5, 4.0)
        if kind == "kill":
            target = r.choice(["ws0", "ws1", "worker0", "worker1"])
            faults.append(Fault(at, length, kind, target, {}, ""))
        else:
            attributes, stream = _toxic(kind, r)
            target = pinned or r.choice(PROXIES)
            faults.append(Fault(at, length, kind, target, attributes, stream))
    return sorted(faults, key=lambda f: f.at)


@pytest.mark.parametrize("seed", SEEDS)
async def test_network_faults_lose_nothing_and_delivery_stays_bounded(
    seed: int,
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
            members += [Member(f"g{g}m{i}", a, cid, op_every=OP_EVERY) for i, a in enumerate(team)]
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

        schedule = random_schedule(seed, SEND_FOR_S)
        procs = {f"ws{i}": p for i, p in enumerate(cluster.ws)}
        procs |= {f"worker{i}": p for i, p in enumerate(cluster.worker)}
        locks = {name: asyncio.Lock() for name in procs}  # one kill at a time per process

        async def run(n: int, fault: Fault) -> None:
            await asyncio.sleep(max(0.0, t0 + fault.at - time.monotonic()))  # the schedule
            start = time.monotonic()
            if fault.kind == "kill":
                async with locks[fault.target]:
                    proc = procs[fault.target]
                    await asyncio.to_thread(proc.kill)
                    await asyncio.sleep(fault.length)  # the outage's length (schedule)
                    await _start_like_a_deployment(proc)
            else:
                name = f"{fault.kind}{n}"
                await asyncio.to_thread(
                    toxiproxy.add_toxic,
                    fault.target,
                    name,
                    fault.kind,
                    fault.attributes,
                    fault.stream,
                )
                await asyncio.sleep(fault.length)  # the fault's length (schedule)
                await asyncio.to_thread(toxiproxy.remove_toxic, fault.target, name)
            faults.append((start, time.monotonic()))

        try:
            await asyncio.gather(*(run(n, f) for n, f in enumerate(schedule)))
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
            stored[cid] = history
        print(f"\nnetwork faults report (seed {seed}, {SEND_FOR_S} s of sends):")
        for f in schedule:
            print(f"  at {f.at:5.1f} s for {f.length:.1f} s: {f.kind} {f.target} {f.attributes}")
        print(f"  produced: {sum(m.produced for m in members)}")
        print(f"  acked: {sum(len(m.acked) for m in members)}")
        print(f"  duplicate acks: {sum(m.duplicate_acks for m in members)}")
        print(f"  edits and deletes: {sum(len(m.ops) for m in members)}")
        print(f"  connections: {sum(m.connections for m in members)}")
        print(f"  error frames: {[dict(m.errors) for m in members]}")
        # The archive's watermark reaches the last event (sends, edits, deletes) of each.
        heads = {c: len(next(m for m in members if m.cid == c).applied) for c in cids}
        verify(members, stored, faults)
        await eventually(
            lambda: asyncio.to_thread(lambda: watermarks(backing, cids) == heads),
            DRAIN_TIMEOUT_S,
            "archive caught up after the faults",
        )
    finally:
        await api.close()


async def _start_like_a_deployment(proc: Proc) -> None:
    """Start a killed process again; one that exits at start-up (its store unreachable through
    a toxic) is started again after a pause, as Kubernetes restarts a crashed pod. Bounded."""
    for _ in range(RESTART_ATTEMPTS):
        try:
            await asyncio.to_thread(proc.start)
            return
        except ChildFailed:
            await asyncio.sleep(1.0)  # restart backoff, not synchronisation
    raise AssertionError(f"{proc.name} did not start in {RESTART_ATTEMPTS} attempts")


async def _until(cond: Callable[[], bool], deadline: float, what: str) -> None:
    while not cond():
        assert time.monotonic() < deadline, f"{what}: not within the drain timeout"
        await asyncio.sleep(0.2)


pytestmark = pytest.mark.timeout(int(180 + 1.5 * SEND_FOR_S))  # per seed; grows with a soak
