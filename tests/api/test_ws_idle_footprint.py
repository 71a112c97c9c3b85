"""What an idle socket keeps on the real gateway, structurally (the bytes per socket are a
benchmark figure, docs/performance.md; these are the choices that keep it small and would
silently regress): no list of pending frames once they are written, no finished heartbeat
Task, no refill task set, no upgrade request headers, slotted session objects, Tornado's
per-instance method guard not installed on the handler, and no attribute of ours on Tornado's
protocol object."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from tests.support.fixtures import Server, ServerFactory, with_limits

BEAT_S = 0.3


def _session(server: Server, user_id: str) -> Any:
    return next(s for s in server.rt.gateway.sockets if s.principal.user.id == user_id)


async def _until(check: Any, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        await asyncio.sleep(0.01)


async def test_an_idle_socket_keeps_nothing_it_no_longer_needs(make_server: ServerFactory) -> None:
    server = await make_server(with_limits(heartbeat_interval_s=BEAT_S))
    alice, bob = await server.api.register(), await server.api.register()
    cid = await server.api.dm(alice, bob)
    wa = await server.ws(alice)
    ack = await wa.request(
        {"type": "send", "conversation_id": cid, "client_id": "one", "body": "hi"}
    )
    assert ack["type"] == "ack", ack
    session = _session(server, alice.id)
    outbound = session.transport.outbound
    await _until(lambda: outbound.queued_frames == 0, "the ack and the message written")
    assert outbound._pending is None  # dropped once empty, made again by the next frame
    assert outbound._direct  # a plain TCP stream: written to without Tornado's buffer

    # A heartbeat ran and re-armed its timer: the finished Task is not kept.
    first = session._timers["beat"]
    await _until(lambda: session._timers["beat"] is not first, "a heartbeat done and re-armed")
    assert session.beat is None

    assert session.cursors._tasks is None  # no refill ever ran on this socket
    for obj in (session, session.cursors, session.transport, outbound):
        assert not hasattr(obj, "__dict__"), type(obj).__name__
    handler = session.transport._socket
    assert "write" not in vars(handler) and "finish" not in vars(handler)
    assert len(handler.request.headers) == 0
    # The protocol object (frames were read through its buffer) keeps CPython's compact
    # shared-key attribute dict (~300 bytes): one attribute of ours on top of Tornado's would
    # give each socket a dict of its own (~1.6 KiB, rfc6455.py).
    proto = handler.ws_connection
    assert "_inbound" not in vars(proto)
    assert sys.getsizeof(vars(proto)) < 1000
    await wa.close()
