"""Slow consumers and big replays on the real gateway: a reader at full speed is never cut off
by its own resume; a stalled reader is closed with 4008 once the bytes queued for it pass the
budget (not after hundreds of frames), and a slow reader still hears that 4008."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Any

import pytest
import websockets

from tests.support.clients import Account, Ws
from tests.support.fixtures import Server, ServerFactory, with_limits

FAST = {"send_burst": 100_000, "send_rate_per_s": 100_000}


async def _fill(server: Server, who: Account, cid: str, n: int, body: str) -> None:
    """Append n messages quickly: pipelined sends on one socket, then wait for every ack."""
    ws = await server.ws(who)
    for i in range(n):
        await ws.send(
            {
                "type": "send",
                "ref": f"f{i}",
                "conversation_id": cid,
                "client_id": f"f{i}",
                "body": body,
            }
        )
    await ws.wait_count(lambda f: f.get("type") == "ack", n, timeout=60)
    await ws.close()


def _handler(server: Server, user_id: str) -> Any:
    gateway = server.rt.gateway
    return next(h for h in gateway.sockets if h.principal.user.id == user_id)


async def test_resume_of_1000_events_reaches_a_reader_at_full_speed(server: Server) -> None:
    """1000 events (the documented replay limit), more than `outbound_queue_frames` (512), are
    replayed to a client that reads at full speed, by `resume` and by the auth frame."""
    alice, bob = await server.api.register(), await server.api.register()
    cid = await server.api.dm(alice, bob)
    limit = server.settings.limits.replay_max_events
    assert limit > server.settings.limits.outbound_queue_frames
    await _fill(server, alice, cid, limit, "r" * 300)
    wb = await server.ws(bob)
    resumed = await wb.request({"type": "resume", "conversations": {cid: 0}}, timeout=30)
    assert resumed["type"] == "resumed" and resumed["not_recoverable"] == [], resumed
    assert [m["seq"] for m in wb.messages(cid)] == list(range(1, limit + 1))
    wc = await Ws.connect(server.ws_url, server.origin)
    await wc.request({"type": "auth", "token": bob.access, "resume": {cid: 0}})
    got = await wc.wait_count(lambda f: f.get("type") == "message", limit, timeout=30)
    assert [m["seq"] for m in got] == list(range(1, limit + 1))
    assert not wb.closed.is_set() and not wc.closed.is_set()
    await wb.close()
    await wc.close()


async def test_replay_chunks_fit_a_small_frame_budget(make_server: ServerFactory) -> None:
    """Replay chunks are sized from the limits: with `outbound_queue_frames` = 8, a resume of
    50 events still reaches a reader at full speed."""
    server = await make_server(with_limits(outbound_queue_frames=8, **FAST))
    alice, bob = await server.api.register(), await server.api.register()
    cid = await server.api.dm(alice, bob)
    await _fill(server, alice, cid, 50, "small")
    wb = await server.ws(bob)
    resumed = await wb.request({"type": "resume", "conversations": {cid: 0}}, timeout=30)
    assert resumed["type"] == "resumed", resumed
    assert [m["seq"] for m in wb.messages(cid)] == list(range(1, 51))
    await wb.close()


async def _stalled_reader(server: Server, who: Account) -> Ws:
    """A client with a small receive buffer that stops reading after `ready`."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    sock.connect(("127.0.0.1", server.settings.port))
    sock.setblocking(False)
    ws = await Ws.connect(server.ws_url, server.origin, sock=sock, max_queue=4)
    await ws.auth(who.access)
    assert ws._reader is not None
    ws._reader.cancel()
    return ws


async def test_stalled_reader_is_closed_by_the_byte_budget(make_server: ServerFactory) -> None:
    """With the frame limit out of reach, the byte budget alone closes a stalled socket with
    4008 after about `outbound_queue_bytes`, not after megabytes."""
    budget = 256 * 1024
    server = await make_server(
        with_limits(outbound_queue_frames=1_000_000, outbound_queue_bytes=budget, **FAST)
    )
    alice, bob = await server.api.register(), await server.api.register()
    cid = await server.api.dm(alice, bob)
    reader = await _stalled_reader(server, bob)
    handler = _handler(server, bob.id)
    writer = await server.ws(alice)
    body = "€" * 3900  # ~12 KB per frame
    sent = 0
    for i in range(400):  # ~4.7 MB: far more than the budget plus every buffer on the way
        await writer.request(
            {"type": "send", "conversation_id": cid, "client_id": f"s{i}", "body": body}
        )
        sent += len(body.encode())
        if handler.closing:
            break
    else:
        pytest.fail("a stalled reader was never closed")
    assert sent < 4 * budget, sent
    closes = server.rt.metrics.registry.get_sample_value("chat_ws_closes_total", {"code": "4008"})
    assert closes == 1
    await writer.close()
    reader.conn.transport.abort()


async def test_slow_reader_hears_4008(make_server: ServerFactory) -> None:
    """The close frame is not queued behind the backlog that Tornado's abort (5 s after the
    close frame) drops: a reader that stalled, then reads slowly, gets 4008."""
    # The frame limit at its default (512, ~6 MB of these frames) and a 256 KiB byte budget.
    server = await make_server(with_limits(outbound_queue_bytes=256 * 1024, **FAST))
    alice, bob = await server.api.register(), await server.api.register()
    cid = await server.api.dm(alice, bob)
    reader = await _stalled_reader(server, bob)
    handler = _handler(server, bob.id)
    writer = await server.ws(alice)
    body = "€" * 3900
    for i in range(3000):
        await writer.request(
            {"type": "send", "conversation_id": cid, "client_id": f"s{i}", "body": body}
        )
        if handler.closing:
            break
    else:
        pytest.fail("a stalled reader was never closed")
    # Read slowly: 20 ms a frame (~600 KB/s). What precedes the close frame must be small for
    # it to arrive before the server gives up on the close handshake.
    started = time.monotonic()
    frames = 0
    code = None
    while time.monotonic() - started < 20:
        try:
            raw = await reader.conn.recv()
        except websockets.ConnectionClosed:
            code = reader.conn.close_code
            break
        json.loads(raw)
        frames += 1
        await asyncio.sleep(0.02)  # the slow reader itself, not synchronisation
    assert code == 4008, (code, frames)
    await writer.close()
