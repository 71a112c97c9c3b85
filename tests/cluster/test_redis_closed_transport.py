"""A Redis connection the peer reset fails its next write as redis-py's `ConnectionError` on
either event loop, so redis-py's retry reconnects and a Redis that stays unreachable is reported
as `Unavailable` (`dependency_unavailable`).

On a TCP reset the event loop closes the transport. asyncio's selector transport then drops a
write and the drain after it raises `ConnectionResetError`, which redis-py translates; uvloop's
raises `RuntimeError: unable to perform operation on <TCPTransport closed=True ...>; the handler
is closed` from the write itself (MagicStack/uvloop#506), which redis-py 8.1 lets through. Under
Toxiproxy's `reset_peer` (tests/multiprocess/test_network_faults.py, seed 1) a new connection's
first handshake write drew the reset and its second met the closed transport: the RuntimeError
escaped redis-py's retry and `redis_errors`, and a gateway on uvloop answered `internal`.

Each test runs its body on both loops, in a loop of its own (not the session's), through a real
Toxiproxy in front of a real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop
from redis.exceptions import ConnectionError as RedisConnectionError

from chat.domain.errors import Unavailable
from chat.stores.cluster.redis_conn import COMMAND_TIMEOUT_S, RedisTarget, make_client, redis_errors
from tests.cluster.helpers import eventually
from tests.servers import RedisServer, ToxiproxyServer

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}
loops = pytest.mark.parametrize("loop", sorted(LOOPS))


def run_on(loop: str, main: Coroutine[Any, Any, None]) -> None:
    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        runner.run(main)


@pytest.fixture
def proxied(toxiproxy: ToxiproxyServer, private_redis: RedisServer) -> str:
    """A Redis URL through Toxiproxy (proxy "redis")."""
    return f"redis://127.0.0.1:{toxiproxy.proxy('redis', private_redis.port)}/0"


def _reset_every_connection(toxiproxy: ToxiproxyServer) -> None:
    """Toxiproxy resets (RST) a connection opened from now on when the client first sends on
    it, as in the network-faults test (one open before is closed with a FIN instead)."""
    toxiproxy.add_toxic("redis", "reset", "reset_peer", {"timeout": 0}, "upstream")


async def _no_handshake(_: object) -> None:
    """In place of redis-py's connect-time commands: the test's own writes are then the
    connection's first (a handshake of several writes races the reset)."""


@loops
@pytest.mark.parametrize("socket_timeout", [COMMAND_TIMEOUT_S, None], ids=["timeout", "none"])
def test_a_write_after_a_reset_is_a_connection_error(
    loop: str, socket_timeout: float | None, proxied: str, toxiproxy: ToxiproxyServer
) -> None:
    """Both of redis-py's write paths: with a socket timeout (the stores' clients) and without
    (the bus's subscriber connections, whose reads block)."""

    async def main() -> None:
        pool = RedisTarget(proxied).pool(
            protocol=2, socket_timeout=socket_timeout, redis_connect_func=_no_handshake
        )
        conn = pool.make_connection()  # type: ignore[no-untyped-call]
        try:
            await asyncio.to_thread(_reset_every_connection, toxiproxy)
            await conn.connect()  # type: ignore[no-untyped-call]
            await conn.send_command("PING")  # this write draws the reset
            writer = conn._writer
            assert writer is not None
            await eventually(writer.transport.is_closing, "the reset closed the transport", 5.0)
            with pytest.raises(RedisConnectionError):
                await conn.send_command("PING")
        finally:
            await conn.disconnect(nowait=True)
            await pool.aclose()

    run_on(loop, main())


ATTEMPTS = 5
"""Calls made while every connection is reset. Whether a handshake's second write meets the
closed transport is a race (the first test provokes it for sure); each call reconnects
RETRIES + 1 times, so five calls give the race twenty chances."""


@loops
def test_a_redis_that_resets_every_connection_is_unavailable(
    loop: str, proxied: str, toxiproxy: ToxiproxyServer
) -> None:
    async def main() -> None:
        client = make_client(proxied)
        try:
            assert await client.ping()
            await asyncio.to_thread(_reset_every_connection, toxiproxy)
            for _ in range(ATTEMPTS):
                with pytest.raises(Unavailable) as raised, redis_errors():
                    await client.ping()
                assert raised.value.code == "dependency_unavailable"
                assert raised.value.details == {"dependency": "Redis"}
            # Once the resets stop, the same client works again (its retry reconnects).
            await asyncio.to_thread(toxiproxy.remove_toxic, "redis", "reset")
            assert await client.ping()
        finally:
            await client.aclose()

    run_on(loop, main())
