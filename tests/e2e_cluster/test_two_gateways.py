"""Cluster mode end to end, in-process: two complete nodes (each its own runtime, Redis
connections and pub/sub subscription) on one Redis, PostgreSQL and FerretDB, with Dramatiq on
the Redis broker. Clients on different nodes chat; one resumes on the other node; the worker
archives into MongoDB."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from chat.config import Settings
from tests.support.archived import archived_upto
from tests.support.clients import Ws
from tests.support.fixtures import Server, free_port, serve, with_limits


async def _node(base: Settings, worker: bool) -> Server:
    port = free_port()
    settings = replace(
        base,
        port=port,
        sweep_interval_s=1.0,
        drain_timeout_s=2.0,
        limits=with_limits(send_burst=1000, send_rate_per_s=1000),
    )
    return await serve(settings, worker=worker)


@pytest.fixture
async def nodes(cluster_settings: Settings) -> AsyncIterator[tuple[Server, Server]]:
    a = await _node(cluster_settings, worker=True)
    b = await _node(cluster_settings, worker=False)
    yield a, b
    await b.stop()
    await a.stop()


async def test_chat_across_nodes_resume_elsewhere_and_archive(
    nodes: tuple[Server, Server],
) -> None:
    a, b = nodes
    alice, bob = await a.api.register(), await a.api.register()
    cid = await a.api.dm(alice, bob)
    wa = await a.ws(alice)
    wb = await Ws.connect(b.ws_url, b.origin)
    await wb.auth(bob.access)
    for i in range(5):
        ack = await wa.request(
            {
                "type": "send",
                "conversation_id": cid,
                "client_id": f"a{i}",
                "body": f"from node A {i}",
            }
        )
        assert ack["seq"] == i + 1
    got = await wb.wait_count(lambda f: f.get("type") == "message", 5)
    assert [f["seq"] for f in got] == [1, 2, 3, 4, 5]
    reply = await wb.request(
        {"type": "send", "conversation_id": cid, "client_id": "b0", "body": "from node B"}
    )
    assert reply["seq"] == 6
    await wa.wait(lambda f: f.get("client_id") == "b0")

    # bob drops; alice keeps talking; bob comes back on node A and resumes without a gap.
    await wb.close()
    for i in range(3):
        await a.api.send(alice, cid, f"while bob was away {i}")
    back = await a.ws(bob)
    resumed = await back.request({"type": "resume", "conversations": {cid: 6}})
    assert resumed["conversations"][cid] == 9
    assert [m["seq"] for m in back.messages(cid)] == [7, 8, 9]

    # The worker drains the log into MongoDB (FerretDB): history is served by either node.
    deadline = time.monotonic() + 20
    while await archived_upto(a.rt.chat, cid) < 9:
        assert time.monotonic() < deadline, "persistence worker never caught up"
        await asyncio.sleep(0.1)
    history = await b.api.history(bob, cid)
    assert [m["seq"] for m in history] == list(range(1, 10))
    ready = await b.api.http.get("/readyz")
    assert ready.status_code == 200
    for s in (wa, back):
        await s.close()
