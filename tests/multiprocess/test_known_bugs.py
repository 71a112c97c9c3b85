"""Minimal reproductions of defects in chat/ found by the chaos test, marked xfail(strict=True):
they document the bug, keep CI green, and turn red (XPASS) the moment the fix lands, so the
marker is removed with it. Neither loses or duplicates a stored message.

1. Live frames before the resume replay (chat/ws/delivery.py `DeliveryCursors.catch_up`,
   called from chat/ws/gateway.py `_resume`): after `ready` the socket's cursors start at the
   conversation's `last_seq` and live events are written at once; a `resume` with an older
   position then replaces the cursor and replays from there, so an event that arrived between
   `ready` and `resume` is written twice, and before the older ones it should follow.
2. A send that is durable answers `internal` after a Redis restart (chat/worker/cluster.py
   `cluster_broker_and_flags`: the pending-flag client is a bare `Redis.from_url`, without the
   reconnect-and-retry and `Unavailable` mapping of chat/stores/cluster/redis_conn.py
   `make_client`). `Messaging._append` (chat/domain/messaging.py) appended the event, then
   `persist_soon` → `RedisPendingFlags.claim` hits the stale pooled connection. The client sees
   an error for a message everyone received; its retry is acked `duplicate`, which skips
   `persist_soon`, so only the periodic sweep (30 s by default) archives it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import tornado.httpserver

from chat.api.app import make_app
from chat.config import Settings
from chat.runtime import open_runtime
from tests.servers import RedisServer
from tests.support.clients import Api, Ws
from tests.support.fixtures import FAST_HASHER, Server, ServerFactory, free_port, with_limits


@pytest.mark.xfail(strict=True, reason="bug 1: live frames go out before the resume replay")
async def test_resume_replays_before_live_frames_that_arrived_after_ready(
    make_server: ServerFactory,
) -> None:
    srv = await make_server(with_limits(send_burst=100, send_rate_per_s=100))
    alice, bob = await srv.api.register(), await srv.api.register()
    cid = await srv.api.dm(alice, bob)
    for i in range(5):
        await srv.api.send(alice, cid, f"m{i}")
    wa = await srv.ws(alice)
    wb = await srv.ws(bob)  # ready: last_seq 5; bob has seen up to 2 and will resume from it
    # One more event before bob's resume: alice's socket gets it, and so does bob's, live.
    await wa.request({"type": "send", "conversation_id": cid, "client_id": "c6", "body": "six"})
    await wa.wait(lambda f: f.get("type") == "message" and f.get("seq") == 6)
    await wb.request({"type": "resume", "conversations": {cid: 2}})
    # Each event once, in seq order: 3, 4, 5, 6 (today: 6, 3, 4, 5, 6).
    assert [m["seq"] for m in wb.messages(cid)] == [3, 4, 5, 6]
    for s in (wa, wb):
        await s.close()


@pytest.mark.xfail(strict=True, reason="bug 2: pending-flag client fails after a Redis restart")
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
    rt = await open_runtime(settings, hasher=FAST_HASHER)
    http = tornado.httpserver.HTTPServer(make_app(rt))
    http.listen(port, "127.0.0.1")
    srv = Server(rt, http, settings, Api(f"http://127.0.0.1:{port}"))
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
