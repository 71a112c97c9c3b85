"""Redis high availability on real processes: gateways, an API and workers behind haproxy on a
Redis primary + replica watched by three Sentinels (`CHAT_REDIS_SENTINELS`, WAIT for one
replica: the default with Sentinel). Under a steady send load the primary is SIGKILLed;
Sentinel promotes the replica; the old primary comes back (as a restarted pod would) as the new
primary's replica. Every process follows without a restart, and the checker proves: every
produced message acked, stored exactly once, in seq order, applied by every member in that
order within the delivery bound of the failover's end, archived by the workers. The
unavailability window (the longest time nobody got an ack) is printed."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.multiprocess.chaos import (
    Member,
    full_history,
    keep_connected,
    longest_ack_gap,
    produce,
    verify,
)
from tests.multiprocess.conftest import ClusterFactory
from tests.multiprocess.helpers import eventually, watermarks
from tests.servers import SENTINEL_MASTER, SentinelGroup, wait_until
from tests.support.clients import Api
from tools.devcluster.cluster import Backing

GROUPS, PER_GROUP = 2, 3
RATE_PER_MEMBER = 2.0  # messages/s; 12 messages/s in all
SEND_FOR_S = 24.0
KILL_PRIMARY_AT = 8.0
PROMOTION_TIMEOUT_S = 30.0
DRAIN_TIMEOUT_S = 60.0
OP_EVERY = 5  # every 5th frame of a member edits or deletes one of its messages


async def test_sentinel_failover_loses_no_acked_message(
    make_cluster: ClusterFactory,
    redis_sentinel_group: SentinelGroup,
    fresh_postgres_dsn: str,
    mongodb_uri: str,
    fresh_mongodb_database: str,
) -> None:
    group = redis_sentinel_group
    old = group.primary()
    backing = Backing(old.url, fresh_postgres_dsn, mongodb_uri, fresh_mongodb_database)
    env = {"CHAT_REDIS_SENTINELS": group.addresses, "CHAT_REDIS_SENTINEL_MASTER": SENTINEL_MASTER}
    cluster = await asyncio.to_thread(make_cluster, backing, gateways=2, workers=2, env=env)
    api = Api(cluster.url)
    members: list[Member] = []
    try:
        for g in range(GROUPS):
            team = [await api.register() for _ in range(PER_GROUP)]
            cid = await api.group(team[0], *team[1:], title=f"failover {g}")
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
        try:
            await asyncio.sleep(max(0.0, t0 + KILL_PRIMARY_AT - time.monotonic()))  # schedule
            killed_at = time.monotonic()
            await asyncio.to_thread(old.kill)
            await asyncio.to_thread(
                wait_until,
                lambda: all(s.master_port() != old.port for s in group.sentinels),
                PROMOTION_TIMEOUT_S,
                "Sentinel promoting the replica",
            )
            promoted_at = time.monotonic()
            new = group.primary()
            old.replicaof = new.port  # the restarted pod rejoins as a replica
            await asyncio.to_thread(old.start)
            await asyncio.to_thread(wait_until, group.replica_in_sync, 60, "old primary resynced")
            rejoined_at = time.monotonic()

            deadline = t0 + SEND_FOR_S + DRAIN_TIMEOUT_S
            while not (time.monotonic() > t0 + SEND_FOR_S and all(not m.pending for m in members)):
                assert time.monotonic() < deadline, "every send acked: not within the drain"
                await asyncio.sleep(0.2)
            last = {
                c: max(s for m in members if m.cid == c for s in m.acked.values()) for c in cids
            }
            while not all(m.cursor >= last[m.cid] for m in members):
                assert time.monotonic() < deadline, "every member caught up: not within the drain"
                await asyncio.sleep(0.2)
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)

        stored = {}
        for cid in cids:
            owner = next(m for m in members if m.cid == cid).account
            stored[cid] = await full_history(api, owner, cid)
        last_ack = max(t for m in members for t in m.ack_times)
        report = {
            "produced": sum(m.produced for m in members),
            "acked": sum(len(m.acked) for m in members),
            "stored messages": sum(len(v) for v in stored.values()),
            "edits and deletes": sum(len(m.ops) for m in members),
            "duplicate acks (client retries answered from dedupe)": sum(
                m.duplicate_acks for m in members
            ),
            "error frames": {k: v for m in members for k, v in m.errors.items()},
            "kill -> promoted_s": round(promoted_at - killed_at, 2),
            "kill -> old primary resynced as replica_s": round(rejoined_at - killed_at, 2),
            "unavailability (longest time without any ack)_s": round(
                longest_ack_gap(members, killed_at - 1.0, last_ack), 2
            ),
        }
        print("\nsentinel failover report:")
        for key, value in report.items():
            print(f"  {key}: {value}")
        # The archive's watermark reaches the last event (sends, edits, deletes) of each.
        heads = {c: len(next(m for m in members if m.cid == c).applied) for c in cids}
        verify(members, stored, [(killed_at, rejoined_at)])
        # The workers followed too: everything stored reaches the archive.
        await eventually(
            lambda: asyncio.to_thread(lambda: watermarks(backing, cids) == heads),
            DRAIN_TIMEOUT_S,
            "archive caught up after the failover",
        )
    finally:
        await api.close()


pytestmark = pytest.mark.timeout(240)
