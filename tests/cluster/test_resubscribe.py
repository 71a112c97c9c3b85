"""Regression (issue 12.2): after a Redis outage, a message appended while the gateway's
subscription is still down reaches its sockets without waiting for a later message in that
conversation: the gateway refills from the log once it has re-subscribed (and retries a refill
that fails), instead of once at the moment the bus broke."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from chat.config import Settings
from tests.cluster.helpers import eventually
from tests.servers import RedisServer
from tests.support.fixtures import Server, free_port, serve, with_limits


@pytest.fixture
async def gateway(
    private_redis: RedisServer, cluster_settings: Settings, tmp_path: Path
) -> AsyncIterator[Server]:
    port = free_port()
    settings = replace(
        cluster_settings,
        redis_url=private_redis.url,
        port=port,
        limits=with_limits(send_burst=100, send_rate_per_s=100),
    )
    srv = await serve(settings, worker=False)
    try:
        yield srv
    finally:
        await srv.stop()


async def test_message_sent_before_resubscription_is_delivered(
    gateway: Server, private_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    alice, bob = await gateway.api.register(), await gateway.api.register()
    cid = await gateway.api.dm(alice, bob)
    wa, wb = await gateway.ws(alice), await gateway.ws(bob)
    await wa.request({"type": "send", "conversation_id": cid, "client_id": "m1", "body": "one"})
    await wb.wait(lambda f: f.get("client_id") == "m1")
    subscription = gateway.rt.gateway._subscription
    private_redis.stop()  # graceful: the AOF keeps the log
    # Down long enough for the subscriber's reconnect backoff to grow past a second.
    await eventually(lambda: subscription.reconnect_failures >= 6, "reconnect attempts", 30)
    private_redis.start()
    ack = await wa.request(
        {"type": "send", "conversation_id": cid, "client_id": "m2", "body": "two"}, timeout=10
    )
    assert ack["type"] == "ack", ack
    # The scenario under test: the append (and its PUBLISH) came before the re-subscription.
    assert not subscription._connected.is_set(), "the subscriber re-subscribed before the send"
    got = await wb.wait(lambda f: f.get("client_id") == "m2", timeout=10)
    assert got["seq"] == 2
    assert [m["seq"] for m in wb.messages(cid)] == [1, 2]
    never_retrieved = [r for r in caplog.records if "never retrieved" in r.getMessage()]
    assert not never_retrieved
    await wa.close()
    await wb.close()
