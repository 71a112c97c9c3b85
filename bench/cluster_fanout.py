"""Cluster-mode fan-out benchmark (issue 4): two gateway processes behind Redis.

`tools.devcluster` starts redis-server (AOF, appendfsync always), PostgreSQL 15, FerretDB,
`migrate`, two `ws` gateways, one `api`, one `worker` and haproxy, on loopback. Users
alternate between the two gateway ports (connected directly, so haproxy's hop is not in the
numbers), so every room spans both gateways and each message crosses Redis pub/sub.

Phases, all bounded:

* **idle memory**: N authenticated sockets (default 5,000: 50 users x 100 sockets, each user in
  one group, `CHAT_LIMIT_MAX_CONNECTIONS_PER_USER` raised), split over the gateways; RSS delta
  of the gateway processes divided by N. The peer gets the same N sockets.
* **fan-out**: for each room size (10, 100) and each rate, 200 sockets; an open-loop publisher
  (`bench/embedded_fanout.py`'s) sends at a fixed total rate round robin over the users into
  their room. Deliveries/s, send->receive p50/p99/p99.9 (sender's monotonic clock in the body,
  one client process), CPU-seconds per 1,000 deliveries of the gateways and of every server
  process (gateways, API, worker, Redis, PostgreSQL, FerretDB; /proc utime+stime, children
  included), and persistence lag: sum over rooms of (Redis head seq - MongoDB watermark),
  sampled every 0.25 s in the window, then the time for it to drain to zero.

`--target peer` runs the same load on `bench/peer_tornado_fanout.py` (one process, no storage,
no bus) for ratios. Nothing here asserts on time.

    .venv/bin/python bench/cluster_fanout.py --target both --json bench/results/x.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from embedded_fanout import (
    Stats,
    User,
    machine,
    open_socket,
    pct,
    post,
    proc_cpu_s,
    publish,
    register_user,
    self_cpu_s,
    setup_peer,
    start_server,
    stop_server,
)

from bench.procstats import tree
from tools.devcluster.cluster import AppCluster, Backing
from tools.devcluster.servers import Services
from tools.harness.net import free_port
from tools.harness.versions import ferretdb_binary

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_of(pids: list[int]) -> float:
    total = 0.0
    for root in pids:
        for pid in tree([root]):
            with contextlib.suppress(OSError):
                total += proc_cpu_s(pid)
    return total


def rss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


class Target:
    """Where the sockets go and which processes count as "the server"."""

    name = "chat"
    gateway_urls: list[str]
    origin: str
    gateway_pids: list[int]
    server_pids: list[int]

    async def users(self, count: int, group: int, tag: str) -> list[User]:
        raise NotImplementedError

    def lag(self, users: list[User]) -> int | None:
        return None


class ChatTarget(Target):
    def __init__(self, cluster: AppCluster, services: Services, backing: Backing) -> None:
        self.cluster, self.backing = cluster, backing
        self.gateway_urls = [f"ws://127.0.0.1:{p.port}/ws" for p in cluster.ws]
        self.origin = cluster.url
        self.gateway_pids = [p.pid for p in cluster.ws]
        self.server_pids = [p.pid for p in [*cluster.ws, *cluster.api, *cluster.worker]]
        self.server_pids += [p.pid for p in services.procs]
        self.redis = redis.Redis.from_url(backing.redis_url)
        self._registered: list[User] = []

    async def users(self, count: int, group: int, tag: str) -> list[User]:
        base = self.cluster.url
        sem = asyncio.Semaphore(4)
        while len(self._registered) < count:  # registered once, reused by every phase
            need = range(len(self._registered), count)
            self._registered += await asyncio.gather(
                *(
                    register_user(base, i, f"bench{i}x{os.getpid()}", f"bench-pw-{i}-x", sem)
                    for i in need
                )
            )
        people = [User(u.index, u.id, u.token) for u in self._registered[:count]]
        for g in range(0, count, group):
            members = people[g : g + group]
            out = await post(
                base,
                "/api/v1/conversations",
                {"kind": "group", "title": f"{tag} {g}", "member_ids": [u.id for u in members]},
                members[0].token,
            )
            for u in members:
                u.conversation = out["id"]
        return people

    def lag(self, users: list[User]) -> int | None:
        """Σ (head seq - archived), both from the log's heads: the worker records its progress
        there (`archived`); MongoDB's watermarks lag by up to a sweep interval."""
        cids = sorted({u.conversation for u in users})
        try:
            heads = [self.redis.hmget(f"chat:log:{{{c}}}:head", "seq", "archived") for c in cids]
        except Exception:
            return None
        return sum(int(seq or 0) - int(done or 0) for seq, done in heads)

    def close(self) -> None:
        self.redis.close()


class PeerTarget(Target):
    name = "peer"

    def __init__(self, port: int, pid: int) -> None:
        self.gateway_urls = [f"ws://127.0.0.1:{port}/ws"]
        self.origin = f"http://127.0.0.1:{port}"
        self.gateway_pids = self.server_pids = [pid]

    async def users(self, count: int, group: int, tag: str) -> list[User]:
        people = setup_peer(count, group)
        for u in people:
            u.conversation = f"{tag}-{u.conversation}"
        return people


async def open_all(
    target: Target, users: list[User], per_user: int, stats: Stats, acks: dict[str, int]
) -> tuple[list[Any], list[asyncio.Task[None]]]:
    sem = asyncio.Semaphore(32)
    kind = "chat" if target.name == "chat" else "peer"
    urls = target.gateway_urls

    async def one(k: int, u: User) -> Any:
        async with sem:
            return await open_socket(kind, urls[k % len(urls)], target.origin, u, stats, acks)

    pairs = await asyncio.gather(
        *(one(k, u) for k, u in enumerate(u for u in users for _ in range(per_user)))
    )
    return [ws for ws, _ in pairs], [t for _, t in pairs]


async def close_all(sockets: list[Any], readers: list[asyncio.Task[None]]) -> None:
    for chunk in range(0, len(sockets), 200):
        await asyncio.gather(
            *(s.close() for s in sockets[chunk : chunk + 200]), return_exceptions=True
        )
    for t in readers:
        t.cancel()
    await asyncio.gather(*readers, return_exceptions=True)


async def idle_memory(target: Target, connections: int) -> dict[str, Any]:
    per_user = 100
    users = await target.users(max(1, connections // per_user), 10, "idle")
    before = rss_kib(target.gateway_pids)
    stats, acks = Stats(), {}
    t = time.monotonic()
    sockets, readers = await open_all(target, users, per_user, stats, acks)
    opened_s = time.monotonic() - t
    await asyncio.sleep(2)  # let allocations settle before reading RSS (a measurement, no sync)
    after = rss_kib(target.gateway_pids)
    await close_all(sockets, readers)
    return {
        "target": target.name,
        "phase": "idle",
        "connections": len(sockets),
        "gateway_rss_before_mib": round(before / 1024, 1),
        "gateway_rss_after_mib": round(after / 1024, 1),
        "kib_per_connection": round((after - before) / max(1, len(sockets)), 2),
        "open_s": round(opened_s, 1),
    }


async def fanout(
    target: Target, group: int, rate: float, args: argparse.Namespace
) -> dict[str, Any]:
    users = await target.users(args.users, group, f"g{group}r{rate:g}")
    stats, acks = Stats(), {}
    sockets, readers = await open_all(target, users, 1, stats, acks)
    pad = "x" * 30
    warm = int(rate * args.warmup)
    count = int(rate * args.duration)
    await publish(sockets, users, rate, warm, "w", stats, acks, pad, 0)
    await asyncio.sleep(0.5)  # the warm-up's tail drains before the window (not sync)
    stats.expected = count * group
    acks.clear()
    stats.ack_latencies_us.clear()
    lag_samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.25):
            value = target.lag(users)
            if value is not None:
                lag_samples.append(value)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    gw0, all0, me0 = cpu_of(target.gateway_pids), cpu_of(target.server_pids), self_cpu_s()
    stats.window_start_ns = time.monotonic_ns()
    await publish(sockets, users, rate, count, "m", stats, acks, pad, warm)
    drained = True
    try:
        await asyncio.wait_for(stats.done.wait(), args.drain_timeout)
    except TimeoutError:
        drained = False
    gw1, all1, me1 = cpu_of(target.gateway_pids), cpu_of(target.server_pids), self_cpu_s()
    stop.set()
    await asyncio.to_thread(sampler.join)
    lag_drain_s: float | None = None
    if target.name == "chat":
        t = time.monotonic()
        while (await asyncio.to_thread(target.lag, users)) not in (0,):
            if time.monotonic() - t > 60:
                break
            await asyncio.sleep(0.1)  # polling the lag, bounded
        lag_drain_s = round(time.monotonic() - t, 2)
    await close_all(sockets, readers)
    end = stats.last_delivery_ns if drained else time.monotonic_ns()
    elapsed = max(1e-9, (end - stats.window_start_ns) / 1e9)
    delivered = stats.measured_delivered
    return {
        "target": target.name,
        "phase": "fanout",
        "group": group,
        "rate_msgs_per_s": rate,
        "sent": stats.measured_sent,
        "expected_deliveries": stats.expected,
        "deliveries": delivered,
        "all_delivered": drained,
        "deliveries_per_s": round(delivered / elapsed, 1),
        "latency_p50_ms": round(pct(stats.latencies_us, 0.50), 2),
        "latency_p99_ms": round(pct(stats.latencies_us, 0.99), 2),
        "latency_p999_ms": round(pct(stats.latencies_us, 0.999), 2),
        "ack_p50_ms": round(pct(stats.ack_latencies_us, 0.50), 2),
        "gateway_cpu_s_per_1000": round(1000 * (gw1 - gw0) / max(1, delivered), 4),
        "server_cpu_s_per_1000": round(1000 * (all1 - all0) / max(1, delivered), 4),
        "server_cpu_util": round((all1 - all0) / elapsed, 2),
        "client_cpu_util": round((me1 - me0) / elapsed, 2),
        "lag_max_events": max(lag_samples, default=0) if target.name == "chat" else None,
        "lag_mean_events": round(sum(lag_samples) / len(lag_samples), 1) if lag_samples else None,
        "lag_drain_s": lag_drain_s,
        "errors": stats.errors,
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }


async def run_chat(args: argparse.Namespace, rows: list[dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory(prefix="clusterbench-") as tmp:
        root = Path(tmp)
        os.chmod(root, 0o755)  # the postgres user must reach its data directory
        services = Services(root / "servers", ferretdb_binary())
        cluster: AppCluster | None = None
        try:
            backing = services.start()
            cluster = AppCluster(
                backing,
                root,
                gateways=2,
                workers=1,
                env={
                    "CHAT_LIMIT_SEND_RATE_PER_S": "100000",
                    "CHAT_LIMIT_SEND_BURST": "100000",
                    "CHAT_LIMIT_MAX_CONNECTIONS_PER_USER": "1000",
                    "CHAT_LIMIT_OUTBOUND_QUEUE_FRAMES": "100000",
                    "CHAT_LIMIT_OUTBOUND_QUEUE_BYTES": str(256 * 1024 * 1024),
                    "CHAT_LIMIT_REGISTER_BURST_PER_IP": "100000",  # all bench users, one IP
                },
            )
            await asyncio.to_thread(cluster.start)
            target = ChatTarget(cluster, services, backing)
            try:
                await phases(target, args, rows)
            finally:
                target.close()
        finally:
            if cluster is not None:
                await asyncio.to_thread(cluster.stop)
            await asyncio.to_thread(services.stop)


async def run_peer(args: argparse.Namespace, rows: list[dict[str, Any]]) -> None:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="peerbench-") as tmp:
        proc = await start_server("peer", port, Path(tmp), Path(tmp) / "peer.log")
        try:
            await phases(PeerTarget(port, proc.pid), args, rows)
        finally:
            stop_server(proc)


async def phases(target: Target, args: argparse.Namespace, rows: list[dict[str, Any]]) -> None:
    if args.idle_connections:
        rows.append(await idle_memory(target, args.idle_connections))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    for group, rates in ((10, args.rates_10), (100, args.rates_100)):
        for rate in rates:
            rows.append(await fanout(target, group, rate, args))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description="Cluster-mode fan-out benchmark (issue 4).")
    p.add_argument("--target", choices=("chat", "peer", "both"), default="both")
    p.add_argument("--rates-10", type=float, nargs="*", default=[50.0, 100.0], help="msg/s")
    p.add_argument("--rates-100", type=float, nargs="*", default=[5.0, 10.0], help="msg/s")
    p.add_argument("--users", type=int, default=200, help="sockets in the fan-out phases")
    p.add_argument("--duration", type=float, default=15.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--drain-timeout", type=float, default=30.0)
    p.add_argument("--idle-connections", type=int, default=5000, help="0 skips the phase")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    if args.users % 100 or not 0 <= args.idle_connections <= 10_000:
        p.error("--users must be a multiple of 100; --idle-connections 0..10000")
    rows: list[dict[str, Any]] = []
    if args.target in ("chat", "both"):
        asyncio.run(run_chat(args, rows))
    if args.target in ("peer", "both"):
        asyncio.run(run_peer(args, rows))
    info = machine()
    print(json.dumps({"machine": info, "results": rows}, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "results": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
