"""The chat's own metrics, read from the registry the internal /metrics listener serves, after
driving a real embedded server through HTTP and WebSocket."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import orjson
import pytest

import chat
from tests.support.clients import Account, Ws
from tests.support.fixtures import Server, ServerFactory, with_limits

FAST = {"send_burst": 100_000, "send_rate_per_s": 100_000}


def sample(server: Server, name: str, labels: dict[str, str] | None = None) -> float:
    value = server.rt.metrics.registry.get_sample_value(name, labels or {})
    return 0.0 if value is None else value


def _handler(server: Server, user_id: str) -> object:
    gateway = server.rt.gateway
    return next(h for h in gateway.sockets if h.principal.user.id == user_id)


async def test_process_collectors_and_build_info(server: Server) -> None:
    """Dashboards read process_cpu_seconds_total; a bare CollectorRegistry has none."""
    assert server.rt.metrics.registry.get_sample_value("process_cpu_seconds_total") is not None
    assert sample(server, "process_resident_memory_bytes") > 0
    info = [
        s
        for m in server.rt.metrics.registry.collect()
        if m.name == "chat_build_info"
        for s in m.samples
    ]
    assert [(s.labels["version"], s.value) for s in info] == [(chat.__version__, 1.0)]


async def test_http_duration_errors_by_transport_and_auth_failures(server: Server) -> None:
    before = sample(
        server, "chat_auth_failures_total", {"transport": "http", "reason": "unauthenticated"}
    )
    assert (await server.api.http.get("/api/v1/no-such-route")).status_code == 404
    assert (await server.api.http.get("/api/v1/conversations")).status_code == 401
    assert sample(server, "chat_errors_total", {"transport": "http", "code": "not_found"}) >= 1
    after = sample(
        server, "chat_auth_failures_total", {"transport": "http", "reason": "unauthenticated"}
    )
    assert after == before + 1
    assert sample(server, "chat_http_request_duration_seconds_count", {"route": "unmatched"}) >= 1


async def test_ws_auth_failure_connects_and_disconnects(server: Server) -> None:
    labels = {"transport": "ws", "reason": "token_invalid"}
    failures = sample(server, "chat_auth_failures_total", labels)
    ws = await Ws.connect(server.ws_url, server.origin)
    await ws.send({"type": "auth", "token": "not-a-token"})
    await ws.wait_closed()
    assert sample(server, "chat_auth_failures_total", labels) == failures + 1
    assert sample(server, "chat_errors_total", {"transport": "ws", "code": "token_invalid"}) >= 1

    connects, disconnects = (
        sample(server, "chat_ws_connects_total"),
        sample(server, "chat_ws_disconnects_total"),
    )
    alice = await server.api.register()
    ws = await server.ws(alice)
    assert sample(server, "chat_ws_connects_total") == connects + 1
    await ws.close()

    async def gone() -> None:
        while sample(server, "chat_ws_disconnects_total") < disconnects + 1:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(gone(), 5)


async def test_ack_latency_gap_fills_resets_and_not_recoverable(server: Server) -> None:
    alice, bob = await server.api.register(), await server.api.register()
    cid = await server.api.dm(alice, bob)
    acks = sample(server, "chat_send_to_ack_seconds_count")
    wa, wb = await server.ws(alice), await server.ws(bob)
    ack = await wa.request(
        {"type": "send", "conversation_id": cid, "client_id": "c1", "body": "hi"}
    )
    assert ack["type"] == "ack"
    assert sample(server, "chat_send_to_ack_seconds_count") == acks + 1
    await wb.wait(lambda f: f.get("type") == "message" and f["seq"] == 1)

    # A live event past a gap (the bus lost seq 2): counted, and the gap read from the log.
    gaps = sample(server, "chat_gap_fills_total")
    await server.api.send(alice, cid, "two")
    await server.api.send(alice, cid, "three")
    await wb.wait(lambda f: f.get("type") == "message" and f["seq"] == 3)
    gateway = server.rt.gateway
    ahead = {"type": "message", "conversation_id": cid, "seq": 5, "ts": 0}
    # As the hub hands a live event to the socket's cursors (hub.on_message).
    _handler(server, bob.id).cursors.live(cid, 5, 0, orjson.dumps(ahead))  # type: ignore[attr-defined]
    assert sample(server, "chat_gap_fills_total") > gaps

    resets = sample(server, "chat_bus_resets_total")
    gateway.on_reset()
    assert sample(server, "chat_bus_resets_total") == resets + 1

    lost = sample(server, "chat_resume_not_recoverable_total")
    resumed = await wb.request({"type": "resume", "conversations": {cid: 1000}})
    assert resumed["not_recoverable"] == [cid], resumed
    assert sample(server, "chat_resume_not_recoverable_total") == lost + 1
    await wa.close()
    await wb.close()


async def test_outbound_bytes_and_loop_lag(server: Server) -> None:
    alice = await server.api.register()
    ws = await server.ws(alice)
    assert server.rt.metrics.registry.get_sample_value("chat_ws_outbound_queue_bytes") == 0

    async def probed() -> None:
        while sample(server, "chat_event_loop_lag_seconds_count") < 1:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(probed(), 5)
    await ws.close()


async def _stalled_reader(server: Server, who: Account) -> Ws:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    sock.connect(("127.0.0.1", server.settings.port))
    sock.setblocking(False)
    ws = await Ws.connect(server.ws_url, server.origin, sock=sock, max_queue=4)
    await ws.auth(who.access)
    assert ws._reader is not None
    ws._reader.cancel()
    return ws


async def test_deliveries_do_not_count_dropped_frames(make_server: ServerFactory) -> None:
    """Messages for a socket already closing (a slow consumer) are dropped, not delivered."""
    server = await make_server(with_limits(outbound_queue_bytes=64 * 1024, **FAST))
    alice, bob = await server.api.register(), await server.api.register()
    cid = await server.api.dm(alice, bob)
    reader = await _stalled_reader(server, bob)
    handler = _handler(server, bob.id)
    writer = await server.ws(alice)
    body = "x" * 3900
    after_close = 0
    for i in range(400):
        await writer.request(
            {"type": "send", "conversation_id": cid, "client_id": f"s{i}", "body": body}
        )
        if handler.closing:  # type: ignore[attr-defined]
            after_close += 1
            if after_close > 5:
                break
    else:
        pytest.fail("a stalled reader was never closed")
    queued = sample(server, "chat_ws_frames_out_total", {"type": "message"})
    assert sample(server, "chat_deliveries_total") == queued
    assert sample(server, "chat_send_to_deliver_seconds_count") == queued
    await writer.close()
    reader.conn.transport.abort()


QUEUES_PERSIST = ("persist", "persist.DQ")


async def test_sweep_sets_persistence_lag_and_queue_depth(make_server: ServerFactory) -> None:
    """With the workers stopped, the archive falls behind: the sweep reports by how much."""
    server = await make_server(with_limits(**FAST))
    rt = server.rt
    assert rt._worker is not None
    worker, rt._worker = rt._worker, None
    await asyncio.to_thread(worker.stop, 5000)
    alice, bob = await server.api.register(), await server.api.register()
    cid = await server.api.dm(alice, bob)
    for i in range(3):
        await server.api.send(alice, cid, f"m{i}")
    await asyncio.to_thread(rt.actors.sweep.fn)
    assert sample(server, "chat_sweeps_total") == 1
    assert sample(server, "chat_persist_backlog_conversations") == 1
    assert sample(server, "chat_persist_lag_events") == 3
    assert 0 <= sample(server, "chat_persist_lag_seconds") < 60
    assert rt.metrics.registry.get_sample_value("chat_persist_lag_seconds") is not None
    # The sweep's batch job waits in `persist` (a retry would wait in `persist.DQ`).
    waiting = sum(sample(server, "chat_queue_messages", {"queue": q}) for q in QUEUES_PERSIST)
    assert waiting >= 1
    assert (
        rt.metrics.registry.get_sample_value("chat_queue_dead_letters", {"queue": "persist"}) == 0
    )


async def test_store_calls_are_timed(server: Server) -> None:
    alice, bob = await server.api.register(), await server.api.register()
    cid = await server.api.dm(alice, bob)
    labels = {"port": "log", "method": "append"}
    before = sample(server, "chat_store_call_duration_seconds_count", labels)
    await server.api.send(alice, cid, "timed")
    assert sample(server, "chat_store_call_duration_seconds_count", labels) == before + 1
    accounts = {"port": "accounts", "method": "get_user"}
    assert sample(server, "chat_store_call_duration_seconds_count", accounts) >= 1


async def test_store_errors_are_counted() -> None:
    """A unit test of the wrapper alone: a store method that raises is counted, and raises."""
    from chat.metrics import Metrics
    from chat.store_metrics import TimedPort

    class Broken:
        async def get(self, key: str) -> str:
            raise ConnectionError(key)

        def name(self) -> str:
            return "plain"

    metrics = Metrics()
    port: Any = TimedPort(Broken(), "archive", metrics)
    with pytest.raises(ConnectionError):
        await port.get("k")
    assert port.name() == "plain"
    labels = {"port": "archive", "method": "get"}
    assert metrics.registry.get_sample_value("chat_store_errors_total", labels) == 1
    assert metrics.registry.get_sample_value("chat_store_call_duration_seconds_count", labels) == 1


async def test_a_send_refused_by_its_rate_limit_is_not_a_store_error() -> None:
    """The log takes the send's token (issue 14), so `RateLimited` comes out of `log.append`:
    the client's limit, timed like any call, but no failure of the store."""
    from chat.domain.errors import RateLimited
    from chat.metrics import Metrics
    from chat.store_metrics import TimedPort

    class Limited:
        async def append(self, draft: object) -> None:
            raise RateLimited("too many messages; slow down", retry_after_ms=5)

    metrics = Metrics()
    port: Any = TimedPort(Limited(), "log", metrics)
    with pytest.raises(RateLimited):
        await port.append(None)
    labels = {"port": "log", "method": "append"}
    assert metrics.registry.get_sample_value("chat_store_errors_total", labels) in (None, 0)
    assert metrics.registry.get_sample_value("chat_store_call_duration_seconds_count", labels) == 1


async def test_dramatiq_jobs_are_counted_and_timed(server: Server) -> None:
    """The in-process worker archives a sent message: one persist job, ok, with its run time."""
    alice, bob = await server.api.register(), await server.api.register()
    cid = await server.api.dm(alice, bob)
    labels = {"queue": "persist", "actor": "persist_batch"}
    before = sample(server, "chat_jobs_total", {**labels, "outcome": "ok"})
    await server.api.send(alice, cid, "archive me")

    async def archived() -> None:
        while sample(server, "chat_jobs_total", {**labels, "outcome": "ok"}) <= before:
            await asyncio.sleep(0.02)

    await asyncio.wait_for(archived(), 10)
    assert sample(server, "chat_job_duration_seconds_count", labels) >= 1


async def test_replays_are_deliveries_but_not_live_latency(make_server: ServerFactory) -> None:
    """A resume of old events is delivered, but its age is the client's time away: it must not
    land in the send→deliver histogram the latency SLO reads."""
    server = await make_server(with_limits(**FAST))
    alice, bob = await server.api.register(), await server.api.register()
    cid = await server.api.dm(alice, bob)
    for i in range(3):
        await server.api.send(alice, cid, f"while away {i}")
    ws = await server.ws(bob)
    resumed = await ws.request({"type": "resume", "conversations": {cid: 0}})
    assert resumed["conversations"] == {cid: 3}, resumed
    assert sample(server, "chat_deliveries_total") == 3
    assert sample(server, "chat_replayed_events_total") == 3
    assert sample(server, "chat_send_to_deliver_seconds_count") == 0
    await server.api.send(alice, cid, "live")
    await ws.wait(lambda f: f.get("type") == "message" and f["seq"] == 4)
    assert sample(server, "chat_send_to_deliver_seconds_count") == 1
    await ws.close()
