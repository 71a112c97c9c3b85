"""Fan-out over Redis pub/sub: one channel per conversation (and per user), one connection per
subscription.

At most once, like Redis pub/sub itself. What makes it safe is that a subscriber is told every
time it may have missed something: whenever its connection ends for any reason (Redis restart,
network loss, Redis closing a subscriber that overran `client-output-buffer-limit pubsub`), the
listener's `on_reset()` runs once the next connection's subscriptions are in place (Redis has
answered a PING sent after them), so the gateway's refill from the log by `seq` reads after the
gap closed: whatever was published while we were away is in the log by then, and everything
published later reaches us live. (Called at the moment the connection broke, the refill would
fail against a Redis that is down, and a message sent before the resubscription would wait for
the next message of its conversation.)

redis-py's PubSub reconnects and resubscribes by itself inside its retry loop, which would hide
exactly that gap; so this module drives one plain connection per subscription with no retries
and does the reconnecting itself.

Channel names carry the cluster's key prefix on Redis (redis_keys.py) and not in the domain:
the bus adds it when publishing and subscribing and strips it before `on_message`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable, Sequence

import redis.asyncio as aioredis
from redis.asyncio.connection import Connection, ConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from chat.domain.ports import Listener
from chat.stores.cluster.redis_conn import (
    CONNECT_TIMEOUT_S,
    REDIS_ERRORS,
    RedisTarget,
    redis_errors,
)
from chat.stores.cluster.redis_keys import DEFAULT_KEYS, RedisKeys

log = logging.getLogger(__name__)

KEEPALIVE_S = 5.0
"""A subscriber PINGs this often; no reply within twice this long means a dead connection
(a silently vanished peer sends no FIN: without it we would wait forever)."""
RECONNECT_MAX_DELAY_S = 2.0
"""Upper bound of the reconnect backoff while Redis is down."""
SUBSCRIBE_TIMEOUT_S = 10.0
"""`subscribe` waits for Redis to confirm, so a publish right after it is received."""
RESUBSCRIBED = b"chat-resubscribed"
"""The PING payload that follows a reconnection's SUBSCRIBEs: its reply means they took effect."""


class RedisBus:
    def __init__(
        self, client: aioredis.Redis, target: RedisTarget | str, keys: RedisKeys = DEFAULT_KEYS
    ) -> None:
        self._redis = client
        self._keys = keys
        # A separate pool: subscriber connections are long-lived and must not retry silently.
        # RESP2: subscription replies and messages are plain arrays read by `_dispatch` (under
        # RESP3 they would be push frames, handed to a push handler instead of read_response).
        # Through Sentinel, a re-subscribing connection asks for the current primary.
        self._pool = (RedisTarget(target) if isinstance(target, str) else target).pool(
            protocol=2,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            retry=Retry(NoBackoff(), 0),
        )
        self._subscriptions: set[RedisSubscription] = set()

    async def publish(self, channel: str, payload: bytes) -> None:
        with redis_errors():
            await self._redis.publish(self._keys.channel(channel), payload)

    async def open(self, listener: Listener) -> RedisSubscription:
        sub = RedisSubscription(self._pool, listener, self._subscriptions.discard, self._keys)
        self._subscriptions.add(sub)
        await sub.start()
        return sub

    async def close(self) -> None:
        for sub in list(self._subscriptions):
            await sub.close()
        await self._pool.aclose()


class RedisSubscription:
    def __init__(
        self,
        pool: ConnectionPool,
        listener: Listener,
        forget: Callable[[RedisSubscription], None],
        keys: RedisKeys = DEFAULT_KEYS,
    ) -> None:
        self._pool = pool
        self._keys = keys
        self._listener = listener
        self._forget = forget
        self._channels: set[str] = set()
        """Subscribed Redis channel names (prefixed)."""
        self._conn: Connection | None = None
        self._connected = asyncio.Event()
        self._pending: dict[str, asyncio.Future[None]] = {}
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._last_heard = 0.0
        self._reset_owed = False
        self.resets = 0
        """How many times `on_reset` was called; for metrics and tests."""
        self.reconnect_failures = 0
        """Failed reconnection attempts so far; for metrics and tests."""

    async def start(self) -> None:
        """Connect before returning, so an unreachable Redis fails `Bus.open` loudly."""
        with redis_errors():
            await self._connect()
        self._task = asyncio.create_task(self._run(), name="redis-subscription")

    async def subscribe(self, channels: Sequence[str]) -> None:
        new = [c for c in map(self._keys.channel, channels) if c not in self._channels]
        if not new:
            return
        self._channels.update(new)
        await self._send_and_confirm("SUBSCRIBE", new)

    async def unsubscribe(self, channels: Sequence[str]) -> None:
        gone = [c for c in map(self._keys.channel, channels) if c in self._channels]
        if not gone:
            return
        self._channels.difference_update(gone)
        conn = self._conn
        if conn is not None and self._connected.is_set():
            # Messages already in flight for these channels are dropped on arrival. The
            # connection may be dropped under the send (redis-py then fails with
            # AttributeError on its cleared writer): nothing is lost, since a reconnect
            # subscribes only to `_channels`, which no longer holds these.
            with contextlib.suppress(AttributeError, *REDIS_ERRORS):
                await conn.send_command("UNSUBSCRIBE", *gone)

    async def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._drop_connection()
        for fut in self._pending.values():
            if not fut.done():
                fut.cancel()
        self._pending.clear()
        self._forget(self)

    # --- connection lifecycle -------------------------------------------------------------------

    async def _connect(self) -> None:
        conn: Connection = self._pool.make_connection()  # type: ignore[no-untyped-call]
        try:
            # A Redis still loading its AOF accepts the socket, then fails the handshake.
            await conn.connect()  # type: ignore[no-untyped-call]
            # `subscribe` calls made meanwhile only added to `_channels` (not connected yet):
            # loop until every channel was sent, with no await between the last check and
            # `_connected.set()`, after which `subscribe` sends for itself.
            sent: set[str] = set()
            while missing := self._channels - sent:
                await conn.send_command("SUBSCRIBE", *sorted(missing))
                sent |= missing
            if self._reset_owed:
                # Answered after the SUBSCRIBEs above (one connection, in order): `_dispatch`
                # runs `on_reset` then.
                await conn.send_command("PING", RESUBSCRIBED)
        except BaseException:
            await conn.disconnect(nowait=True)
            raise
        self._conn = conn
        self._last_heard = asyncio.get_running_loop().time()
        self._connected.set()

    async def _drop_connection(self) -> None:
        self._connected.clear()
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.disconnect(nowait=True)

    async def _send_and_confirm(self, command: str, channels: list[str]) -> None:
        loop = asyncio.get_running_loop()
        waits = []
        for channel in channels:
            fut = self._pending.get(channel)
            if fut is None or fut.done():
                fut = self._pending[channel] = loop.create_future()
            waits.append(fut)
        conn = self._conn
        if conn is not None and self._connected.is_set():
            # If this write fails, the reader notices the broken connection and the reconnect
            # subscribes to every channel in `self._channels`, confirming these futures.
            with contextlib.suppress(*REDIS_ERRORS):
                await conn.send_command(command, *channels)
        with redis_errors():
            try:
                async with asyncio.timeout(SUBSCRIBE_TIMEOUT_S):
                    await asyncio.gather(*waits)
            except TimeoutError as exc:
                raise ConnectionError(f"Redis did not confirm {command} {channels}") from exc

    async def _run(self) -> None:
        delay = 0.05
        while not self._closed:
            if self._conn is None:
                try:
                    await self._connect()
                except REDIS_ERRORS as exc:
                    self.reconnect_failures += 1
                    log.info("redis subscriber reconnect failed: %s", exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RECONNECT_MAX_DELAY_S)
                    continue
                delay = 0.05
            try:
                await self._read_until_broken()
            except REDIS_ERRORS as exc:
                log.warning("redis subscriber connection lost: %s", exc)
            if self._closed:
                return
            await self._drop_connection()
            # Whatever was published while we were not connected is gone for us: the listener
            # hears it once the next connection is subscribed.
            self._reset_owed = True
            self._disconnected()

    async def _read_until_broken(self) -> None:
        conn = self._conn
        assert conn is not None
        keepalive = asyncio.create_task(self._keepalive(conn), name="redis-subscription-ping")
        # Looked up once: on CPython 3.11 each lookup is a getpid() system call, and this loop
        # runs once per message published to any channel the process watches.
        clock = asyncio.get_running_loop().time
        try:
            while True:
                reply = await conn.read_response(timeout=math.inf)
                self._last_heard = clock()
                self._dispatch(reply)
        finally:
            keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keepalive

    async def _keepalive(self, conn: Connection) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(KEEPALIVE_S)
            if loop.time() - self._last_heard > 2 * KEEPALIVE_S:
                log.warning("redis subscriber silent for %.0fs; reconnecting", KEEPALIVE_S * 2)
                # Closing the socket makes the reader's pending read fail: one code path for
                # every way a connection can end.
                await conn.disconnect(nowait=True)
                return
            with contextlib.suppress(*REDIS_ERRORS):
                await conn.send_command("PING")

    def _disconnected(self) -> None:
        """Optional listener hook, at the moment the gap opens: what is kept only while
        subscribed (the gateway's membership cache, chat/domain/membership.py) must go now,
        not at `on_reset`, since a removal published meanwhile is never heard."""
        hook = getattr(self._listener, "on_disconnect", None)
        if hook is None:
            return
        try:
            hook()
        except Exception:
            log.exception("listener.on_disconnect failed")

    def _dispatch(self, reply: object) -> None:
        if reply == RESUBSCRIBED:  # PING's reply on a connection with no subscriptions
            reply = [b"pong", RESUBSCRIBED]
        if not isinstance(reply, list) or not reply:
            return
        kind = reply[0]
        if kind == b"message":
            channel = reply[1].decode()
            # Unsubscribed channels may still have messages in flight: drop them.
            name = self._keys.domain_channel(channel)
            if channel in self._channels and name is not None:
                try:
                    self._listener.on_message(name, reply[2])
                except Exception:
                    log.exception("listener.on_message failed")
        elif kind == b"subscribe":
            fut = self._pending.pop(reply[1].decode(), None)
            if fut is not None and not fut.done():
                fut.set_result(None)
        elif kind == b"pong" and reply[1:2] == [RESUBSCRIBED] and self._reset_owed:
            self._reset_owed = False
            self.resets += 1
            try:
                self._listener.on_reset()
            except Exception:
                log.exception("listener.on_reset failed")
