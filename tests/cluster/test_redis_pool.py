"""More concurrent commands than a client has connections wait for one instead of failing.

redis-py's default asyncio pool raises MaxConnectionsError as soon as its connections are all
busy: thousands of sockets' presence calls on one gateway turned into refused sends and auths
(`dependency_unavailable`) in the benchmark at 10 000 idle sockets."""

from __future__ import annotations

import asyncio

from chat.stores.cluster.redis_conn import make_client
from tests.servers import RedisServer


async def test_commands_beyond_the_pool_wait_for_a_connection(private_redis: RedisServer) -> None:
    client = make_client(private_redis.url, max_connections=2)
    try:
        # Each BLPOP holds its connection for 0.2 s: 12 of them need 6 rounds of 2.
        replies = await asyncio.gather(
            *(client.blpop([f"absent-{i}"], timeout=0.2) for i in range(12))
        )
        assert replies == [None] * 12
        pool = client.connection_pool
        assert len(pool._in_use_connections) + len(pool._available_connections) <= 2
    finally:
        await client.aclose()
