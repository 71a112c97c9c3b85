"""The gateway's membership cache on real servers (Redis, PostgreSQL, FerretDB): an API node and
a gateway node, each its own runtime and Redis subscription. A member's repeated sends on the
gateway make no PostgreSQL membership query after the first (counted by the store metrics,
`chat_store_call_duration_seconds_count{port="conversations",method="is_member"}`); once the
owner removes them through the other node's API, a send from their still-open socket is
refused with `not_member` within a bounded poll (chat/domain/membership.py: one pub/sub hop)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from chat.config import Settings
from tests.support.clients import Ws
from tests.support.fixtures import Server, free_port, serve, with_limits


async def _node(base: Settings, *, api: bool, gateway: bool) -> Server:
    settings = replace(
        base,
        port=free_port(),
        sweep_interval_s=1.0,
        drain_timeout_s=2.0,
        limits=with_limits(send_burst=1000, send_rate_per_s=1000),
    )
    return await serve(settings, worker=False, api=api, gateway=gateway, web=False)


@pytest.fixture
async def nodes(cluster_settings: Settings) -> AsyncIterator[tuple[Server, Server]]:
    api = await _node(cluster_settings, api=True, gateway=False)
    gw = await _node(cluster_settings, api=False, gateway=True)
    yield api, gw
    await gw.stop()
    await api.stop()


def member_queries(node: Server) -> float:
    sample = node.rt.metrics.registry.get_sample_value(
        "chat_store_call_duration_seconds_count", {"port": "conversations", "method": "is_member"}
    )
    return sample or 0.0


async def test_member_sends_skip_the_database_and_a_removal_is_refused_promptly(
    nodes: tuple[Server, Server],
) -> None:
    api, gw = nodes
    owner, alice = await api.api.register(), await api.api.register()
    cid = await api.api.group(owner, alice)
    ws = await Ws.connect(gw.ws_url, gw.origin)
    await ws.auth(alice.access)

    def send(client_id: str) -> dict[str, object]:
        return {"type": "send", "conversation_id": cid, "client_id": client_id, "body": "hi"}

    first = await ws.request(send("m0"))
    assert first["type"] == "ack", first
    after_first = member_queries(gw)
    assert after_first >= 1  # the first send asked PostgreSQL
    for i in range(1, 11):
        ack = await ws.request(send(f"m{i}"))
        assert ack["type"] == "ack" and ack["seq"] == i + 1, ack
    assert member_queries(gw) == after_first  # ten more sends, no membership query

    # An API process has no cache: each of its sends asks the database.
    before = member_queries(api)
    for i in range(3):
        await api.api.send(alice, cid, f"over http {i}")
    assert member_queries(api) == before + 3

    removed = await api.api.http.delete(
        f"/api/v1/conversations/{cid}/members/{alice.id}", headers=owner.auth
    )
    assert removed.status_code == 204, removed.text
    deadline = time.monotonic() + 5
    attempt = 0
    while True:
        attempt += 1
        answer = await ws.request(send(f"after{attempt}"))
        if answer["type"] == "error":
            assert answer["code"] == "not_member", answer
            break
        assert time.monotonic() < deadline, "a removed member could still send after 5 s"
        await asyncio.sleep(0.02)
    await ws.wait(lambda f: f.get("type") == "conversation_left")
    # Refused from then on (not a one-off), and never re-admitted from a stale entry.
    again = await ws.request(send("later"))
    assert again["type"] == "error" and again["code"] == "not_member", again
    await ws.close()
