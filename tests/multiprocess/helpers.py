"""Client-side helpers for the multi-process tests: which gateway haproxy chose, landing a
socket on a chosen gateway through haproxy, and the archive's watermark read from MongoDB."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pymongo

from tests.support.clients import Account, Ws
from tools.devcluster.cluster import AppCluster, Backing

CONNECT_ATTEMPTS = 12


def backend_of(ws: Ws) -> str:
    """The server haproxy sent this socket to (its `X-Chat-Backend` response header)."""
    response = ws.conn.response
    assert response is not None
    return str(response.headers["X-Chat-Backend"])


async def connect(cluster: AppCluster, who: Account) -> Ws:
    client = await Ws.connect(cluster.ws_url, cluster.url)
    await client.auth(who.access)
    return client


async def connect_avoiding(cluster: AppCluster, who: Account, avoid: str) -> Ws:
    """A socket through haproxy that did not land on `avoid`: connect until one lands elsewhere
    (least-connections balancing sends the next socket to the emptier gateway), keeping the
    misses open meanwhile so they count, then closing them. Bounded."""
    misses: list[Ws] = []
    try:
        for _ in range(CONNECT_ATTEMPTS):
            client: Ws = await connect(cluster, who)
            if backend_of(client) != avoid:
                return client
            misses.append(client)
        raise AssertionError(f"{CONNECT_ATTEMPTS} sockets all landed on {avoid}")
    finally:
        for miss in misses:
            await miss.close()


def watermarks(backing: Backing, cids: list[str]) -> dict[str, int]:
    """Highest seq archived per conversation (0 when none), straight from MongoDB."""
    with pymongo.MongoClient(backing.mongodb_uri, serverSelectionTimeoutMS=3000) as client:
        docs = client[backing.mongodb_database]["watermarks"].find({"_id": {"$in": cids}})
        found = {str(d["_id"]): int(d["seq"]) for d in docs}
    return {cid: found.get(cid, 0) for cid in cids}


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout_s: float, what: str, every_s: float = 0.2
) -> None:
    """Poll an async check until it holds; fail naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s}s"
        await asyncio.sleep(every_s)
