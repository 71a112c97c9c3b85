"""The python-socketio peer of the benchmark: one node of a Socket.IO server on Tornado whose
nodes share rooms through python-socketio's Redis manager (Redis pub/sub; no history, no
durability). It runs in the benchmark's own venv (bench/requirements.txt), never the project's.

Two events, both acknowledged: `join` (room name) enters the room; `send` ({"room", "b"})
emits `message` ({"b"}) to everyone in the room on every node, sender included, then acks.

    $VENV/bin/python bench/peers/socketio_server.py --port 8100 --redis redis://127.0.0.1:6379
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import socketio
import tornado.web


def build(redis_url: str) -> tuple[socketio.AsyncServer, tornado.web.Application]:
    sio = socketio.AsyncServer(
        async_mode="tornado",
        client_manager=socketio.AsyncRedisManager(redis_url),
        cors_allowed_origins="*",
        transports=["websocket"],
    )

    @sio.event
    async def join(sid: str, room: str) -> str:
        await sio.enter_room(sid, room)
        return "ok"

    @sio.event
    async def send(sid: str, data: dict[str, Any]) -> str:
        await sio.emit("message", {"b": data["b"]}, room=data["room"])
        return "ok"

    app = tornado.web.Application([(r"/socket.io/", socketio.get_tornado_handler(sio))])
    return sio, app


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--redis", required=True)
    args = p.parse_args()
    _, app = build(args.redis)
    app.listen(args.port, address="127.0.0.1")
    print(f"socketio peer running at 127.0.0.1:{args.port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
