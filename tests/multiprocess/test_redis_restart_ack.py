"""Regression: a durable send is acked even when Redis restarted under the queueing client
(found by the chaos test with the pending-flag client of the time; the persistence signal is now
part of the append itself, and a failure to queue the batch job never fails the ack — the next
send or the sweep covers it)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from chat.config import Settings
from tests.servers import RedisServer
from tests.support.clients import Ws
from tests.support.fixtures import free_port, serve, with_limits


async def test_send_after_redis_restart_is_acked(
    private_redis: RedisServer, cluster_settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    settings = replace(
        cluster_settings,
        redis_url=private_redis.url,
        port=port,
        limits=with_limits(send_burst=100, send_rate_per_s=100),
    )
    srv = await serve(settings, worker=False)
    try:
        alice, bob = await srv.api.register(), await srv.api.register()
        cid = await srv.api.dm(alice, bob)
        wa: Ws = await srv.ws(alice)
        first = await wa.request(
            {"type": "send", "conversation_id": cid, "client_id": "a", "body": "1"}
        )
        assert first["type"] == "ack"
        private_redis.restart(hard=True)  # AOF keeps the log; pooled connections are stale
        second = await wa.request(
            {"type": "send", "conversation_id": cid, "client_id": "b", "body": "2"}
        )
        # Durable in the log (seq 2) and delivered, so it must be acked (today: `internal`).
        assert second["type"] == "ack" and second["seq"] == 2, second
        await wa.close()
    finally:
        await srv.stop()
