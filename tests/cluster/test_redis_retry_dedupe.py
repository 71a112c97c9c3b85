"""Regression (issue 12.6): a send made once is never answered `duplicate: true` because the
Redis client re-sent the append script after losing the reply to a run that went through.
Nor is it charged twice (issue 14: the script takes the send's rate-limit token).

A small TCP proxy between the client and a real Redis forwards everything but drops the
connection instead of delivering the first successful append's reply: exactly what a network
blip or a client timeout after Redis executed the script looks like."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest

from chat.domain.errors import RateLimited
from chat.domain.models import EventDraft, EventKind, RateCharge
from chat.stores.cluster import ClusterPorts
from chat.stores.cluster.redis_conn import make_client
from chat.stores.cluster.redis_log import RedisEventLog
from tests.servers import RedisServer

APPEND_OK = b"*4\r\n:1\r\n"
"""The start of the append script's reply `{1, seq, ts, job}` (RESP2)."""
APPEND_DUPLICATE = b"*3\r\n:0\r\n"
"""The start of its reply to a duplicate, `{0, seq, frame}`."""


class ReplyDroppingProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.armed = False
        self.reply = APPEND_OK  # the reply dropped once armed
        self.dropped = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, replies: bool) -> None:
            try:
                while data := await src.read(65536):
                    if replies and self.armed and data.startswith(self.reply):
                        self.armed = False
                        self.dropped += 1
                        return  # the script ran; its reply never reaches the client
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                for w in (writer, up_writer):
                    with contextlib.suppress(Exception):
                        w.close()

        for task in (
            asyncio.create_task(pump(reader, up_writer, replies=False)),
            asyncio.create_task(pump(up_reader, writer, replies=True)),
        ):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)


@pytest.fixture
async def proxy(private_redis: RedisServer) -> AsyncIterator[ReplyDroppingProxy]:
    p = ReplyDroppingProxy(private_redis.port)
    await p.start()
    yield p
    await p.close()


async def test_a_retry_inside_the_client_is_not_a_duplicate(
    proxy: ReplyDroppingProxy, cluster: ClusterPorts
) -> None:
    client = make_client(f"redis://127.0.0.1:{proxy.port}/0")
    archive = cluster.ports.archive
    log = RedisEventLog(client, archive.floor, archive.event)
    cid = f"c_{uuid.uuid4().hex}"
    try:
        warm = await log.append(EventDraft(cid, EventKind.MESSAGE, "u1", "warm", "x"))
        assert warm.event.seq == 1 and not warm.duplicate
        proxy.armed = True
        once = await log.append(EventDraft(cid, EventKind.MESSAGE, "u1", "once", "hello"))
        assert proxy.dropped == 1, "the proxy never dropped the reply: nothing was tested"
        assert once.duplicate is False, once
        assert once.event.seq == 2 and once.event.body == "hello"
        # A real second send of the same client_id still is a duplicate, with the same event.
        again = await log.append(EventDraft(cid, EventKind.MESSAGE, "u1", "once", "hello"))
        assert again.duplicate is True and again.event == once.event
        page = await log.read(cid, 0, 10)
        assert [e.client_id for e in page.events] == ["warm", "once"]
    finally:
        await client.aclose()


def _msg(cid: str, client_id: str) -> EventDraft:
    return EventDraft(cid, EventKind.MESSAGE, "u1", client_id, "hello")


@pytest.mark.parametrize("dropped", [APPEND_OK, APPEND_DUPLICATE], ids=["new", "duplicate"])
async def test_a_retry_inside_the_client_is_not_charged_twice(
    proxy: ReplyDroppingProxy, cluster: ClusterPorts, dropped: bytes
) -> None:
    """Three tokens, no refill to speak of: the warm-up, the send whose reply is lost (run
    twice by redis-py), and one more send. A second charge of the re-run would refuse that."""
    client = make_client(f"redis://127.0.0.1:{proxy.port}/0")
    archive = cluster.ports.archive
    log = RedisEventLog(client, archive.floor, archive.event)
    cid = f"c_{uuid.uuid4().hex}"
    charge = RateCharge(f"send:{uuid.uuid4().hex}", 0.001, 3)
    try:
        await log.append(_msg(cid, "warm"), charge=charge)
        proxy.armed, proxy.reply = True, dropped
        again = "warm" if dropped is APPEND_DUPLICATE else "m2"
        lost = await log.append(_msg(cid, again), charge=charge)
        assert proxy.dropped == 1, "the proxy never dropped the reply: nothing was tested"
        assert lost.duplicate is (dropped is APPEND_DUPLICATE)
        last = await log.append(_msg(cid, "m3"), charge=charge)
        assert not last.duplicate
        with pytest.raises(RateLimited):  # all three tokens spent, each once
            await log.append(_msg(cid, "m4"), charge=charge)
    finally:
        await client.aclose()
