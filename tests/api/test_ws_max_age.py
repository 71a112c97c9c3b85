"""Maximum connection age on the real gateway (issue 12 item 6: after a gateway restart nothing
rebalanced clients). An authenticated socket is closed with 1012 once its jittered age is up;
a client that reconnects and resumes misses nothing and gets nothing twice; 0 turns it off."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.support.clients import Ws
from tests.support.fixtures import ServerFactory, with_limits

FAST = {"send_burst": 100_000, "send_rate_per_s": 100_000}
AGE, JITTER = 1.0, 0.1


async def test_authenticated_socket_closes_with_1012_within_the_jittered_age(
    make_server: ServerFactory,
) -> None:
    server = await make_server(
        with_limits(max_connection_age_s=AGE, max_connection_age_jitter=JITTER)
    )
    alice = await server.api.register()
    started = time.monotonic()
    ws = await server.ws(alice)
    # The bound (age + jitter, plus slack for a loaded machine) is the test's timeout.
    code = await ws.wait_closed(timeout=AGE * (1 + JITTER) + 2)
    elapsed = time.monotonic() - started
    assert code == 1012
    assert elapsed >= AGE * (1 - JITTER), elapsed  # not before its age
    assert not any(f.get("type") == "error" for f in ws.frames), ws.frames


async def test_reconnect_and_resume_gets_every_message_exactly_once(
    make_server: ServerFactory,
) -> None:
    """Messages keep arriving across two age closes; the client reconnects on each 1012 and
    resumes from the last seq it saw, as docs/protocol.md says: seqs 1..N, each once, in order."""
    server = await make_server(
        with_limits(max_connection_age_s=AGE, max_connection_age_jitter=JITTER, **FAST)
    )
    alice, bob = await server.api.register(), await server.api.register()
    cid = await server.api.dm(alice, bob)
    seen: list[int] = []
    codes: list[int | None] = []
    stop = asyncio.Event()

    async def reader() -> None:
        while True:
            ws = await Ws.connect(server.ws_url, server.origin)
            ready = await ws.request(
                {"type": "auth", "token": bob.access, "resume": {cid: seen[-1] if seen else 0}}
            )
            assert ready["type"] == "ready", ready
            await ws.wait_closed(timeout=AGE * (1 + JITTER) + 2)
            seen.extend(m["seq"] for m in ws.messages(cid))
            codes.append(ws.close_code)
            if len(codes) >= 2:
                stop.set()
                return

    async def sender() -> int:
        last = 0
        while not stop.is_set():
            last = await server.api.send(alice, cid, f"m{last + 1}")
        return last

    read = asyncio.create_task(reader())
    last = await asyncio.wait_for(sender(), timeout=10)
    await asyncio.wait_for(read, timeout=5)
    assert codes == [1012, 1012]
    # What was sent after the second close is replayed to the next connection.
    ws = await Ws.connect(server.ws_url, server.origin)
    await ws.request({"type": "auth", "token": bob.access, "resume": {cid: seen[-1]}})
    if seen[-1] < last:
        await ws.wait(lambda f: f.get("type") == "message" and f["seq"] == last)
    seen.extend(m["seq"] for m in ws.messages(cid))
    await ws.close()
    assert last > 2
    assert seen == list(range(1, last + 1))


async def test_zero_disables_the_age_limit(make_server: ServerFactory) -> None:
    server = await make_server(with_limits(max_connection_age_s=0))
    alice = await server.api.register()
    ws = await server.ws(alice)
    # An observation window, not synchronisation: what must not happen has had time to.
    with pytest.raises(TimeoutError):
        await ws.wait_closed(timeout=AGE * (1 + JITTER) + 0.5)
    pong = await ws.request({"type": "ping"})
    assert pong["type"] == "pong"
    await ws.close()
