"""A floor to compare against: a bare Tornado WebSocket fan-out server, no storage.

It speaks the subset of the chatcluster gateway protocol the benchmark uses, over the same
transport (Tornado's WebSocket handler on one asyncio loop):

* first frame ``{"type": "auth", "token": USER, "conversations": [ROOM, ...]}`` → ``ready``;
* ``{"type": "send", "ref", "conversation_id", "client_id", "body"}`` → ``ack`` to the sender,
  then one ``message`` frame, encoded once, handed to ``write_message`` for every member of the
  room (sender included).

No accounts, no persistence, no rate limits, no Origin check: what is left is JSON parsing,
WebSocket framing and the socket writes, which any gateway pays.

Run: ``python bench/peer_tornado_fanout.py --port 8765`` (prints ``peer running at URL``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from typing import Any

import orjson
import tornado.web
import tornado.websocket


class Rooms:
    def __init__(self) -> None:
        self.members: dict[str, set[FanoutHandler]] = {}
        self.seq: dict[str, int] = {}


class FanoutHandler(tornado.websocket.WebSocketHandler):
    def initialize(self, rooms: Rooms) -> None:
        self.rooms = rooms
        self.user: str | None = None
        self.joined: list[str] = []

    def check_origin(self, origin: str) -> bool:
        return True

    def on_message(self, message: str | bytes) -> None:
        frame: dict[str, Any] = orjson.loads(message)
        if self.user is None:
            self.user = str(frame.get("token"))
            self.joined = [str(c) for c in frame.get("conversations", [])]
            for cid in self.joined:
                self.rooms.members.setdefault(cid, set()).add(self)
                self.rooms.seq.setdefault(cid, 0)
            self.write_message(orjson.dumps({"type": "ready", "ref": frame.get("ref")}))
            return
        if frame.get("type") != "send":
            return
        cid = frame["conversation_id"]
        members = self.rooms.members.get(cid)
        if members is None or self not in members:
            return
        seq = self.rooms.seq[cid] = self.rooms.seq[cid] + 1
        ts = time.time_ns() // 1_000_000
        self.write_message(
            orjson.dumps({"type": "ack", "ref": frame.get("ref"), "seq": seq, "ts": ts})
        )
        payload = orjson.dumps(
            {
                "type": "message",
                "conversation_id": cid,
                "seq": seq,
                "sender_id": self.user,
                "client_id": frame.get("client_id"),
                "body": frame.get("body"),
                "ts": ts,
            }
        )
        for h in tuple(members):  # encode once, write many
            with contextlib.suppress(tornado.websocket.WebSocketClosedError):
                h.write_message(payload)

    def on_close(self) -> None:
        for cid in self.joined:
            self.rooms.members.get(cid, set()).discard(self)


async def serve(host: str, port: int) -> None:
    app = tornado.web.Application([(r"/ws", FanoutHandler, {"rooms": Rooms()})])
    app.listen(port, address=host)
    print(f"peer running at http://{host}:{port}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
