"""Script calls on the shared link (chat/stores/cluster/redis_shared_link.py) against a real
Redis: many in flight come back to their own callers; what the link cannot settle (a dropped
connection, NOSCRIPT, READONLY, a script error) is settled by the pooled client, with its
retries and error classes; calls on a hung connection time out as a pooled call would; a
dropped link comes back."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import pytest
import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import ReadOnlyError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from chat.stores.cluster.redis_conn import make_client
from chat.stores.cluster.redis_shared_link import SharedLink
from tests.cluster.helpers import eventually
from tests.servers import RedisServer

# Returns its argument and counts its runs: a call made twice (on the link and again on the
# pool) shows in the count.
ECHO = "redis.call('INCR', KEYS[1]); return {tonumber(ARGV[1]), ARGV[2]}"
FAILING = "return redis.error_reply('ERR the script says no')"


@pytest.fixture
async def client(private_redis: RedisServer) -> AsyncIterator[aioredis.Redis]:
    c = make_client(private_redis.url)
    yield c
    await c.aclose()


async def _linked(client: aioredis.Redis, **kwargs: float) -> tuple[SharedLink, AsyncScript]:
    """A SharedLink whose connection is up (the first call opens it and goes to the pool),
    and the ECHO script."""
    link = SharedLink(client, **kwargs)
    script = client.register_script(ECHO)
    await link.evalsha(script, ["runs"], ["0", "warm"])
    await eventually(lambda: link.connected, what="the shared link to come up")
    return link, script


@contextmanager
def stopped(server: RedisServer) -> Iterator[None]:
    """SIGSTOP: calls written to the link wait for their replies until SIGCONT."""
    assert server.proc is not None
    pid = server.proc.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


async def test_many_calls_in_flight_each_get_their_own_reply(client: aioredis.Redis) -> None:
    link, script = await _linked(client)
    before = link.calls_on_link
    replies = await asyncio.gather(
        *(link.evalsha(script, ["runs"], [str(i), f"body {i}".encode()]) for i in range(2000))
    )
    assert replies == [[i, f"body {i}".encode()] for i in range(2000)]
    assert link.calls_on_link - before == 2000, "every call went over the link"
    assert int(await client.get("runs") or 0) == 2001, "each ran once"
    await link.aclose()


async def test_a_cancelled_call_does_not_shift_the_replies(
    client: aioredis.Redis, private_redis: RedisServer
) -> None:
    link, script = await _linked(client)
    with stopped(private_redis):
        first = asyncio.ensure_future(link.evalsha(script, ["runs"], ["1", "first"]))
        second = asyncio.ensure_future(link.evalsha(script, ["runs"], ["2", "second"]))
        await asyncio.sleep(0)  # both written
        first.cancel()
    assert await second == [2, b"second"]
    assert first.cancelled()
    assert await link.evalsha(script, ["runs"], ["3", "third"]) == [3, b"third"]
    await link.aclose()


async def test_noscript_loads_the_script_through_the_pool(client: aioredis.Redis) -> None:
    link, script = await _linked(client)
    await client.script_flush()  # as after a restart or a failover
    assert await link.evalsha(script, ["runs"], ["7", "again"]) == [7, b"again"]
    before = link.calls_on_link
    assert await link.evalsha(script, ["runs"], ["8", "loaded"]) == [8, b"loaded"]
    assert link.calls_on_link == before + 1, "the link is kept and used once the script loads"
    await link.aclose()


async def test_a_script_error_is_raised_as_the_pool_raises_it(client: aioredis.Redis) -> None:
    link, _ = await _linked(client)
    failing = client.register_script(FAILING)
    await client.script_load(FAILING)
    with pytest.raises(ResponseError, match="the script says no"):
        await link.evalsha(failing, [], [])
    assert link.connected, "an error reply is an answer: the link stays"
    await link.aclose()


async def test_readonly_drops_the_link_and_raises_redis_pys_error(
    client: aioredis.Redis,
) -> None:
    link, script = await _linked(client)
    # A primary demoted to a replica (of nobody reachable) refuses writes with READONLY.
    await client.execute_command("REPLICAOF", "127.0.0.1", "1")
    try:
        with pytest.raises(ReadOnlyError):
            await link.evalsha(script, ["runs"], ["1", "refused"])
        assert link.drops == 1, "a connection to a replica is not kept"
    finally:
        await client.execute_command("REPLICAOF", "NO", "ONE")
    await eventually(lambda: link.connected, what="a new link")
    assert await link.evalsha(script, ["runs"], ["2", "after"]) == [2, b"after"]
    await link.aclose()


async def test_calls_in_flight_when_redis_dies_are_made_again_on_the_pool(
    client: aioredis.Redis, private_redis: RedisServer
) -> None:
    link, script = await _linked(client)
    assert private_redis.proc is not None
    os.kill(private_redis.proc.pid, signal.SIGSTOP)  # written, not yet run
    calls = [
        asyncio.ensure_future(link.evalsha(script, ["runs"], [str(i), b"x"])) for i in range(20)
    ]
    await asyncio.sleep(0)
    assert link.calls_on_link >= 20
    private_redis.kill()  # the link sees the connection close
    private_redis.start()  # redis-py's retry reconnects (and reloads the script)
    assert await asyncio.gather(*calls) == [[i, b"x"] for i in range(20)]
    assert link.drops == 1
    await eventually(lambda: link.connected, what="the link back after the restart")
    before = link.calls_on_link
    assert await link.evalsha(script, ["runs"], ["5", b"y"]) == [5, b"y"]
    assert link.calls_on_link == before + 1
    await link.aclose()


async def test_a_hung_connection_times_its_calls_out_and_is_dropped(
    client: aioredis.Redis, private_redis: RedisServer
) -> None:
    link, script = await _linked(client, timeout_s=0.3)
    with stopped(private_redis):
        calls = [
            asyncio.ensure_future(link.evalsha(script, ["runs"], [str(i), "late"]))
            for i in range(3)
        ]
        await eventually(lambda: link.drops == 1, what="the link dropped for its silence")
        # Each waiting call raises redis-py's TimeoutError (redis_errors: `Unavailable`), as a
        # pooled call's socket timeout would, not another wait on a pooled connection.
        for call in calls:
            with pytest.raises(RedisTimeoutError, match=r"no reply from Redis in 0\.3 s"):
                await call
    await eventually(lambda: link.connected, what="a new link once Redis answers")
    assert await link.evalsha(script, ["runs"], ["4", "after"]) == [4, b"after"]
    await link.aclose()


async def test_after_aclose_calls_go_to_the_pool(client: aioredis.Redis) -> None:
    link, script = await _linked(client)
    await link.aclose()
    assert not link.connected
    before = link.calls_on_link
    assert await link.evalsha(script, ["runs"], ["4", "pooled"]) == [4, b"pooled"]
    assert link.calls_on_link == before and not link.connected


async def test_a_resp3_client_keeps_to_the_pool(private_redis: RedisServer) -> None:
    """The link's parser reads RESP2 replies: a client on RESP3 never sets one up."""
    resp3 = aioredis.Redis.from_url(private_redis.url, protocol=3)
    try:
        link = SharedLink(resp3)
        script = resp3.register_script(ECHO)
        for i in range(3):
            assert await link.evalsha(script, ["runs"], [str(i), "pooled"]) == [i, b"pooled"]
            await asyncio.sleep(0)  # where an opening link would have run
        assert link.calls_on_link == 0 and not link.connected
        await link.aclose()
    finally:
        await resp3.aclose()
