"""`StrictProtocol` reads frames through its own buffer, whole and in order however the bytes
arrive, and runs each message's handler inline in the connection's task (no task per
frame), one frame after another, with what a frame bound for its logs unbound after it; a
handler that raises still aborts the connection. A tiny Tornado app on loopback, a real
client."""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
from collections.abc import AsyncIterator
from typing import Any

import tornado.httpserver
import tornado.testing
import tornado.web
import tornado.websocket

from chat.logs import bind, context
from chat.ws.rfc6455 import StrictProtocol


class Probe(tornado.websocket.WebSocketHandler):
    seen: list[tuple[str, asyncio.Task[Any] | None, dict[str, str]]]

    def initialize(self, seen: list[tuple[str, asyncio.Task[Any] | None, dict[str, str]]]) -> None:
        self.seen = seen

    def get_websocket_protocol(self) -> tornado.websocket.WebSocketProtocol | None:
        proto = super().get_websocket_protocol()
        assert isinstance(proto, tornado.websocket.WebSocketProtocol13)
        return StrictProtocol(self, False, proto.params)

    async def on_message(self, message: str | bytes) -> None:
        assert isinstance(message, str)
        self.seen.append((message, asyncio.current_task(), context()))
        bind(conversation_id=f"c-{message}")
        await asyncio.sleep(0)  # a real await inside the handler
        if message == "boom":
            raise RuntimeError("handler failed")
        await self.write_message(message)


@contextlib.asynccontextmanager
async def _connected() -> AsyncIterator[
    tuple[tornado.websocket.WebSocketClientConnection, list[Any]]
]:
    """The app on a free loopback port and a client connected to it; both closed after."""
    seen: list[Any] = []
    sock, port = tornado.testing.bind_unused_port()
    app = tornado.web.Application([("/ws", Probe, {"seen": seen})])
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets([sock])
    try:
        ws = await tornado.websocket.websocket_connect(f"ws://127.0.0.1:{port}/ws")
        try:
            yield ws, seen
        finally:
            ws.close()
    finally:
        server.stop()


async def test_frames_run_in_order_in_the_connection_task_without_leaking_context() -> None:
    async with _connected() as (ws, seen):
        for text in ("a", "b", "c"):
            await ws.write_message(text)
        echoed = [await asyncio.wait_for(ws.read_message(), 5) for _ in range(3)]
        assert echoed == ["a", "b", "c"]
        assert [m for m, _, _ in seen] == ["a", "b", "c"]
        tasks = {id(t) for _, t, _ in seen}
        assert len(tasks) == 1  # one task: the connection's, not one per frame
        assert all("conversation_id" not in ctx for _, _, ctx in seen)  # unbound after each


async def test_a_handler_that_raises_aborts_the_connection() -> None:
    async with _connected() as (ws, seen):
        await ws.write_message("boom")
        assert await asyncio.wait_for(ws.read_message(), 5) is None  # the connection is gone
        assert [m for m, _, _ in seen] == ["boom"]


def _masked(text: str) -> bytes:
    """A client text frame (masked), any length."""
    payload = text.encode()
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x81, 0x80 | n)
    elif n <= 0xFFFF:
        head = struct.pack("!BBH", 0x81, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def test_frames_cut_anywhere_or_packed_together_are_read_whole_and_in_order() -> None:
    async with _connected() as (ws, seen):
        stream = ws.protocol.stream  # type: ignore[union-attr]
        big = "y" * 70_000  # longer than one read-ahead, with a 64-bit length
        texts = ["p1", "x" * 300, "p3", big, "tail"]
        packed = b"".join(_masked(t) for t in texts[:3])
        await stream.write(packed)  # three frames in one write
        split = _masked(texts[3]) + _masked(texts[4])
        for i in range(0, 40):  # the first bytes one by one: cut inside header, length, mask
            await stream.write(split[i : i + 1])
        await stream.write(split[40:])
        echoed = [await asyncio.wait_for(ws.read_message(), 5) for _ in texts]
        assert echoed == texts
        assert [m for m, _, _ in seen] == texts


async def test_many_frames_in_one_read_are_each_handled_once_in_order() -> None:
    async with _connected() as (ws, seen):
        stream = ws.protocol.stream  # type: ignore[union-attr]
        texts = [f"m{i}" + "z" * (i % 200) for i in range(300)]  # short and 126+ byte frames
        await stream.write(b"".join(_masked(t) for t in texts))
        echoed = [await asyncio.wait_for(ws.read_message(), 5) for _ in texts]
        assert echoed == texts
        assert [m for m, _, _ in seen] == texts
