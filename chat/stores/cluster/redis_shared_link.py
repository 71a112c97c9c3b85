"""One Redis connection that carries many script calls in flight at once, for the send path.

redis-py's asyncio client takes a connection from its pool for every command and holds it until
the reply comes: per call, the pool's condition and timeout, a `Retry` frame, an asyncio timeout
around the read and the option handling of `execute_command`. On a gateway that was about a
third of its CPU per send (the append script, issue 14's profile), more than the script's own
round trip. Here the script's command is written straight to one connection kept for the
purpose, and one reader task hands the replies to their callers in order: Redis answers the
commands of a connection in the order they came, so many sends share the connection without
waiting for each other (pipelining, with no batching delay).

The link is a fast path only; whatever it cannot settle goes to the pooled client, which has
the retries, reconnects and error classes:

- no link yet, or one being set up, or one with too much unsent or unanswered: the call goes
  to the pooled client;
- the link drops (the server closed it, a write failed): every call in flight on it is made
  again on the pooled client. That is safe only for a script that may run twice, as the append
  script may (it deduplicates by the call's attempt id, chat/stores/cluster/redis_log_scripts.py);
- the link gets no reply at all for `COMMAND_TIMEOUT_S` while calls wait: it is dropped and
  those calls raise redis-py's `TimeoutError`, as a pooled call's socket timeout would (a hung
  server would keep a pooled connection waiting as long again, then redis-py would retry);
- an error reply (NOSCRIPT after a restart, READONLY after a failover, LOADING, a script
  error...): the pooled client makes the call again and raises redis-py's exception class for
  it, or loads the script. A READONLY also drops the link: it found a replica where the primary
  was, and a new connection asks Sentinel again.

A dropped link is set up again a second later (`RECONNECT_HOLDOFF_S`); one that cannot be set
up is tried again by a later call, at most once a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from chat.stores.cluster.redis_conn import COMMAND_TIMEOUT_S

log = logging.getLogger(__name__)

RECONNECT_HOLDOFF_S = 1.0
"""A link that failed to come up, or dropped, is tried again no sooner than this."""
MAX_IN_FLIGHT = 4096
"""Calls waiting for a reply on the link at most; more go to the pooled client."""
MAX_UNSENT_BYTES = 1 << 20
"""Bytes the link's socket has not taken yet, at most; more go to the pooled client (a Redis
that stopped reading must not pile up a gateway's memory)."""
READ_CHUNK = 1 << 16


class _Lost(Exception):
    """The link broke before this call's reply came; `reason` says how."""

    def __init__(self, reason: BaseException) -> None:
        super().__init__(str(reason))
        self.reason = reason


class _Link:
    """One connection from the client's pool, held for as long as it works. Calls are written
    to its transport as they come; the reader task parses replies (hiredis) and resolves the
    oldest waiting future with each."""

    def __init__(
        self, conn: AbstractConnection, timeout_s: float, on_drop: Callable[[], None]
    ) -> None:
        reader, writer = conn._reader, conn._writer  # redis-py keeps them private
        if reader is None or writer is None:  # the pool hands out connected ones
            raise RedisConnectionError("the pool's connection is not connected")
        self.conn = conn
        self.closed = False
        self._loop = asyncio.get_running_loop()
        self._transport = writer.transport
        self._timeout_s = timeout_s
        self._on_drop = on_drop
        self._waiting: deque[asyncio.Future[Any]] = deque()
        self._replies = 0
        self._watch: asyncio.TimerHandle | None = None
        self._parser = hiredis.Reader(replyError=ResponseError)
        self._reading = asyncio.create_task(self._read(reader))

    def can_take(self) -> bool:
        return (
            not self.closed
            # asyncio's transport drops a write after the peer closed (the reader may not have
            # seen the close yet): such a call would wait out the timeout.
            and not self._transport.is_closing()
            and len(self._waiting) < MAX_IN_FLIGHT
            and self._transport.get_write_buffer_size() < MAX_UNSENT_BYTES
        )

    def call(self, packed: list[bytes]) -> asyncio.Future[Any]:
        future = self._loop.create_future()
        try:
            self._transport.writelines(packed)
        except Exception as exc:  # uvloop raises on a transport it has closed
            future.set_exception(_Lost(exc))
            self.fail(exc)
            return future
        self._waiting.append(future)
        if self._watch is None:
            self._watch = self._loop.call_later(self._timeout_s, self._check, self._replies)
        return future

    def _check(self, replies_then: int) -> None:
        """Runs every `timeout_s` while calls wait: no reply at all in that time is a hung
        connection (the socket timeout a pooled call would have hit)."""
        self._watch = None
        if self.closed or not self._waiting:
            return
        if self._replies == replies_then:
            self.fail(RedisTimeoutError(f"no reply from Redis in {self._timeout_s} s"))
            return
        self._watch = self._loop.call_later(self._timeout_s, self._check, self._replies)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                data = await reader.read(READ_CHUNK)
                if not data:
                    raise RedisConnectionError("Redis closed the connection")
                self._parser.feed(data)
                while (reply := self._parser.gets()) is not False:
                    self._replies += 1
                    future = self._waiting.popleft()  # IndexError: a reply nobody asked for
                    if not future.done():  # its caller may have been cancelled
                        future.set_result(reply)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.fail(exc)

    def fail(self, exc: BaseException, *, dropped: bool = True) -> None:
        """Every call still waiting is lost: its caller makes it again on the pool."""
        if self.closed:
            return
        self.closed = True
        if dropped:
            log.info("Redis shared link dropped (%s); calls go through the pool meanwhile", exc)
            self._on_drop()
        if self._watch is not None:
            self._watch.cancel()
        while self._waiting:
            future = self._waiting.popleft()
            if not future.done():
                future.set_exception(_Lost(exc))
        if asyncio.current_task() is not self._reading:
            self._reading.cancel()

    async def wait_closed(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await self._reading


class SharedLink:
    """Script calls on one shared connection of `client`'s pool (see the module docstring)."""

    def __init__(self, client: aioredis.Redis, *, timeout_s: float = COMMAND_TIMEOUT_S) -> None:
        self._client = client
        self._timeout_s = timeout_s
        self._link: _Link | None = None
        self._opening: asyncio.Task[None] | None = None
        self._next_try = 0.0
        self._closing = False
        self.calls_on_link = 0
        """Calls written to the link (the rest went straight to the pool)."""
        self.drops = 0
        """Links lost: closed by the server, a failed write, silence, READONLY."""
        # The reply parser here reads RESP2; a client on RESP3 keeps to the pool.
        protocol = client.connection_pool.connection_kwargs.get("protocol", 2)
        self._usable = str(protocol) == "2"

    @property
    def connected(self) -> bool:
        return self._link is not None and not self._link.closed

    def _dropped(self) -> None:
        self.drops += 1
        # Set up again once the holdoff is over, even if no call comes meanwhile.
        asyncio.get_running_loop().call_later(RECONNECT_HOLDOFF_S, self._open_soon)

    async def evalsha(
        self, script: AsyncScript, keys: Sequence[str], args: Sequence[str | bytes]
    ) -> Any:
        """`script(keys, args)`: the reply as redis-py returns it for a client that does not
        decode responses, the errors as it raises them."""
        link = self._link
        if link is None or not link.can_take():
            self._open_soon()
            return await script(keys=keys, args=args)
        packed = link.conn.pack_command("EVALSHA", script.sha, len(keys), *keys, *args)
        self.calls_on_link += 1
        try:
            reply = await link.call(packed)
        except _Lost as lost:
            if isinstance(lost.reason, RedisTimeoutError):
                # A hung server: a pooled connection would wait as long again, and retry.
                # The caller gets the timeout now, as from a pooled call's socket timeout.
                raise RedisTimeoutError(str(lost.reason)) from None
            return await script(keys=keys, args=args)
        if isinstance(reply, ResponseError):
            if str(reply).startswith("READONLY"):
                link.fail(reply)
            return await script(keys=keys, args=args)
        return reply

    def _open_soon(self) -> None:
        if (
            not self._usable
            or self._closing
            or self._opening is not None
            or time.monotonic() < self._next_try
        ):
            return
        self._next_try = time.monotonic() + RECONNECT_HOLDOFF_S
        self._opening = asyncio.create_task(self._open())

    async def _open(self) -> None:
        try:
            old, self._link = self._link, None
            if old is not None:
                await self._give_back(old)
            pool = self._client.connection_pool
            conn = await pool.get_connection()  # type: ignore[no-untyped-call]
            if self._closing:
                await pool.release(conn)
                return
            self._link = _Link(conn, self._timeout_s, self._dropped)
        except Exception as exc:  # Redis down: the pooled client reports it to the callers
            log.debug("Redis shared link not set up: %s", exc)
        finally:
            self._opening = None

    async def _give_back(self, link: _Link) -> None:
        """The link's connection goes back to the pool, disconnected."""
        link.fail(RedisConnectionError("link closed"), dropped=False)
        await link.wait_closed()
        with contextlib.suppress(Exception):
            await link.conn.disconnect()
        await self._client.connection_pool.release(link.conn)

    async def aclose(self) -> None:
        """Before the client closes: calls still waiting go to the pooled client."""
        self._closing = True
        if self._opening is not None:
            self._opening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._opening
        if self._link is not None:
            link, self._link = self._link, None
            await self._give_back(link)
