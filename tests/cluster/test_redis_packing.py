"""Commands are packed by hiredis (redis_conn.py `_HiredisPacking`): the bytes on the wire are
the ones redis-py's own Python packer writes, and a real Redis reads them back unchanged."""

from __future__ import annotations

import pytest
from redis.asyncio.connection import Connection
from redis.exceptions import DataError

from chat.stores.cluster.redis_conn import make_client
from tests.servers import RedisServer

COMMANDS: list[tuple[object, ...]] = [
    ("PING",),
    ("SET", "k", "v"),
    ("CONFIG GET", "maxmemory"),  # a command name with a space: sent as two arguments
    ("EVALSHA", "0" * 40, 2, "chat:log:{c_1}:head", b"raw\x00bytes", 7, -3, "ünïcødé ✓"),
    ("HSET", "h", "f", 12345678901234567890),
    ("INCRBYFLOAT", "f", 0.1),
    ("ZADD", "z", 1e20, "a", -0.0, "b", 1 / 3, "c"),
    ("XADD", "s", "*", "e", b"x" * 100_000),  # larger than redis-py's buffer cutoff
]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: str(a[0]))
async def test_packed_like_redis_pys_own_packer(private_redis: RedisServer, args: tuple) -> None:
    client = make_client(private_redis.url)
    try:
        ours = client.connection_pool.make_connection()
        assert type(ours).pack_command is not Connection.pack_command, "hiredis packs, not Python"
        theirs = Connection()
        assert b"".join(ours.pack_command(*args)) == b"".join(theirs.pack_command(*args))
    finally:
        await client.aclose()


async def test_a_real_redis_reads_what_it_packed(private_redis: RedisServer) -> None:
    client = make_client(private_redis.url)
    try:
        value = b"raw\x00bytes " + "ünïcødé ✓".encode() + b"x" * 70_000
        await client.set("k", value)
        assert await client.get("k") == value
        assert await client.hset("h", mapping={"n": 12345678901234567890, "s": "ü"}) == 2
        assert await client.hgetall("h") == {b"n": b"12345678901234567890", b"s": "ü".encode()}
        async with client.pipeline(transaction=True) as pipe:
            pipe.incr("n", 5).incrbyfloat("f", 0.5).get("n")
            assert await pipe.execute() == [5, 0.5, b"5"]
        for bad in (None, True):
            with pytest.raises(DataError):  # as redis-py's own packer refuses them
                await client.set("k", bad)  # type: ignore[arg-type]
    finally:
        await client.aclose()
