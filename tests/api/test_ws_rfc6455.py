"""Frames that are not this protocol's: binary frames (1003), text that is not UTF-8 (1007),
and RFC 6455 violations Tornado detects (1002) get a close frame with a code, not a bare TCP
reset; nothing of them is processed."""

from __future__ import annotations

import os
import struct

import pytest

from tests.support.clients import Ws
from tests.support.fixtures import Server


def _client_frame(first_byte: int, payload: bytes) -> bytes:
    """A masked client frame with the given FIN/RSV/opcode byte (payload < 126 bytes)."""
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return struct.pack("!BB", first_byte, 0x80 | len(payload)) + mask + masked


async def _raw(ws: Ws, frame: bytes) -> None:
    ws.conn.transport.write(frame)


@pytest.mark.parametrize("authenticated", [False, True])
async def test_binary_frame_closes_1003(server: Server, authenticated: bool) -> None:
    alice = await server.api.register()
    ws = await server.ws(alice if authenticated else None)
    await ws.conn.send(b'{"type": "ping"}')
    assert await ws.wait_closed(5) == 1003
    assert not [f for f in ws.frames if f.get("type") == "pong"]


async def test_invalid_utf8_closes_1007(server: Server) -> None:
    alice = await server.api.register()
    ws = await server.ws(alice)
    await _raw(ws, _client_frame(0x81, b'{"type": "ping", "x": "\xff\xfe"}'))
    assert await ws.wait_closed(5) == 1007


@pytest.mark.parametrize(
    ("name", "frame"),
    [
        ("reserved bit without extension", _client_frame(0x80 | 0x40 | 0x1, b'{"type":"ping"}')),
        ("unknown opcode", _client_frame(0x80 | 0x3, b"x")),
        ("fragmented control frame", _client_frame(0x09, b"")),
        ("continuation with nothing to continue", _client_frame(0x80 | 0x0, b"x")),
    ],
)
async def test_protocol_violations_close_1002(server: Server, name: str, frame: bytes) -> None:
    alice = await server.api.register()
    ws = await server.ws(alice)
    await _raw(ws, frame)
    assert await ws.wait_closed(5) == 1002, name


async def test_max_frame_bytes_counts_the_fragments_of_one_message(server: Server) -> None:
    alice = await server.api.register()
    ws = await server.ws(alice)
    half = server.settings.limits.max_frame_bytes // 2 + 10
    await ws.conn.send(['{"type": "ping", "pad": "', "x" * half, "x" * half, '"}'])
    assert await ws.wait_closed(5) == 1009


async def test_max_body_chars_counts_code_points_after_trimming(server: Server) -> None:
    alice, bob = await server.api.register(), await server.api.register()
    cid = await server.api.dm(alice, bob)
    ws = await server.ws(alice)
    limit = server.settings.limits.max_body_chars
    wide = "\U0001f600" * limit + "   \n"  # 4 bytes each in UTF-8, 2 UTF-16 units each
    ack = await ws.request({"type": "send", "conversation_id": cid, "client_id": "w", "body": wide})
    assert ack["type"] == "ack", ack
    over = await ws.request(
        {"type": "send", "conversation_id": cid, "client_id": "o", "body": "é" * (limit + 1)}
    )
    assert over["code"] == "body_too_long"
    await ws.close()
