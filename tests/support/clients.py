"""Test clients that speak to a real server over real sockets: HTTP (httpx) and WebSocket
(the `websockets` library, an independent implementation of RFC 6455)."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

_names = itertools.count()


def unique(prefix: str = "user") -> str:
    return f"{prefix}{next(_names)}x{int(time.time() * 1000) % 100000}"


@dataclass
class Account:
    id: str
    username: str
    password: str
    access: str
    refresh: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}


class Api:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = httpx.AsyncClient(base_url=base_url, timeout=10)

    async def close(self) -> None:
        await self.http.aclose()

    async def register(
        self, username: str | None = None, password: str = "correct horse"
    ) -> Account:
        username = username or unique()
        r = await self.http.post(
            "/api/v1/auth/register", json={"username": username, "password": password}
        )
        assert r.status_code == 201, r.text
        body = r.json()
        return Account(
            body["user"]["id"], username, password, body["access_token"], body["refresh_token"]
        )

    async def dm(self, a: Account, b: Account) -> str:
        r = await self.http.post(
            "/api/v1/conversations", headers=a.auth, json={"kind": "direct", "user_id": b.id}
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    async def group(self, owner: Account, *members: Account, title: str = "team") -> str:
        r = await self.http.post(
            "/api/v1/conversations",
            headers=owner.auth,
            json={"kind": "group", "title": title, "member_ids": [m.id for m in members]},
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    async def send(self, who: Account, cid: str, body: str, client_id: str | None = None) -> int:
        r = await self.http.post(
            f"/api/v1/conversations/{cid}/messages",
            headers=who.auth,
            json={"client_id": client_id or unique("m"), "body": body},
        )
        assert r.status_code in (200, 201), r.text
        return int(r.json()["event"]["seq"])

    async def history(self, who: Account, cid: str, **params: Any) -> list[dict[str, Any]]:
        r = await self.http.get(
            f"/api/v1/conversations/{cid}/messages", headers=who.auth, params=params
        )
        assert r.status_code == 200, r.text
        return list(r.json()["messages"])


@dataclass
class Ws:
    """A WebSocket client that records every frame it receives, for assertions."""

    conn: ClientConnection
    frames: list[dict[str, Any]] = field(default_factory=list)
    _refs: itertools.count = field(default_factory=lambda: itertools.count(1))
    _reader: asyncio.Task[None] | None = None
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    @classmethod
    async def connect(cls, ws_url: str, origin: str, **kwargs: Any) -> Ws:
        conn = await websockets.connect(ws_url, origin=origin, max_size=2**22, **kwargs)  # type: ignore[arg-type]
        client = cls(conn)
        client._reader = asyncio.create_task(client._read())
        return client

    async def _read(self) -> None:
        try:
            async for raw in self.conn:
                frame = json.loads(raw)
                async with self._arrived:
                    self.frames.append(frame)
                    self._arrived.notify_all()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed.set()
            async with self._arrived:
                self._arrived.notify_all()

    async def send(self, frame: dict[str, Any]) -> None:
        await self.conn.send(json.dumps(frame, ensure_ascii=False))

    async def request(self, frame: dict[str, Any], timeout: float = 5) -> dict[str, Any]:
        ref = f"r{next(self._refs)}"
        await self.send({**frame, "ref": ref})
        return await self.wait(lambda f: f.get("ref") == ref, timeout)

    async def wait(
        self, pred: Callable[[dict[str, Any]], bool], timeout: float = 5
    ) -> dict[str, Any]:
        """The first recorded frame matching `pred`, waiting (bounded) for it to arrive."""

        async def find() -> dict[str, Any]:
            async with self._arrived:
                while True:
                    for f in self.frames:
                        if pred(f):
                            return f
                    if self.closed.is_set():
                        raise ConnectionError(f"closed ({self.close_code}) before a match")
                    await self._arrived.wait()

        return await asyncio.wait_for(find(), timeout)

    async def wait_count(
        self, pred: Callable[[dict[str, Any]], bool], n: int, timeout: float = 5
    ) -> list[dict[str, Any]]:
        async def find() -> list[dict[str, Any]]:
            async with self._arrived:
                while True:
                    found = [f for f in self.frames if pred(f)]
                    if len(found) >= n:
                        return found
                    if self.closed.is_set():
                        raise ConnectionError(f"closed ({self.close_code}) with {len(found)}/{n}")
                    await self._arrived.wait()

        return await asyncio.wait_for(find(), timeout)

    async def auth(self, token: str) -> dict[str, Any]:
        ready = await self.request({"type": "auth", "token": token})
        assert ready["type"] == "ready", ready
        return ready

    async def wait_closed(self, timeout: float = 15) -> int | None:
        await asyncio.wait_for(self.closed.wait(), timeout)
        return self.close_code

    @property
    def close_code(self) -> int | None:
        return self.conn.close_code

    def messages(self, cid: str) -> list[dict[str, Any]]:
        return [
            f for f in self.frames if f.get("type") == "message" and f.get("conversation_id") == cid
        ]

    async def close(self) -> None:
        await self.conn.close()
        if self._reader is not None:
            await self._reader
