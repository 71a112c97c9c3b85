"""A subscriber is told (`on_reset`) every time it may have missed messages, then recovers."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import redis

from chat.stores.cluster.redis_bus import RedisBus
from chat.stores.cluster.redis_keys import DEFAULT_KEYS
from tests.cluster.helpers import Collector, eventually
from tests.servers import RedisServer


def _channel() -> str:
    return f"conv:{{c_{uuid.uuid4().hex}}}"


async def _delivered_after_recovery(bus: RedisBus, collector: Collector, channel: str) -> None:
    """Publish until one arrives: the resubscription confirms asynchronously after a reset."""
    marker = uuid.uuid4().bytes

    async def probe() -> bool:
        await bus.publish(channel, marker)
        return any(p == marker for _, p in collector.messages)

    deadline = time.monotonic() + 20
    while not await probe():
        assert time.monotonic() < deadline, "no delivery after the subscriber recovered"
        await asyncio.sleep(0.05)  # poll interval, not synchronisation


async def test_subscribe_confirms_before_returning(bus: RedisBus) -> None:
    collector, channel = Collector(), _channel()
    sub = await bus.open(collector)
    await sub.subscribe([channel])
    await bus.publish(channel, b"one")
    await eventually(lambda: collector.messages == [(channel, b"one")], "delivery")
    await sub.unsubscribe([channel])
    await bus.publish(channel, b"two")
    await bus.publish(_channel(), b"other")
    await sub.subscribe([channel])
    await bus.publish(channel, b"three")
    await eventually(lambda: len(collector.messages) == 2, "second delivery")
    assert collector.messages[1] == (channel, b"three")
    assert collector.resets == 0
    await sub.close()


async def test_redis_sigkill_and_restart_resets_then_resubscribes(
    bus: RedisBus, private_redis: RedisServer
) -> None:
    collector, channel = Collector(), _channel()
    sub = await bus.open(collector)
    await sub.subscribe([channel])
    private_redis.kill()
    await eventually(lambda: sub.reconnect_failures >= 1, "reconnect attempts while Redis is down")
    # Told once the subscription is back (a refill then can succeed), not while Redis is down.
    assert collector.resets == 0
    private_redis.start()
    await eventually(lambda: collector.resets == 1, "on_reset once resubscribed")
    await _delivered_after_recovery(bus, collector, channel)
    await sub.close()


async def test_killed_subscriber_connection_resets(
    bus: RedisBus, private_redis: RedisServer
) -> None:
    collector, channel = Collector(), _channel()
    sub = await bus.open(collector)
    await sub.subscribe([channel])
    with private_redis.client() as r:
        assert r.client_kill_filter(_type="pubsub") >= 1
    await eventually(lambda: collector.resets == 1, "on_reset after CLIENT KILL")
    await _delivered_after_recovery(bus, collector, channel)
    await sub.close()


class SlowCollector(Collector):
    """Blocks the subscriber's event loop on the first message, as an overloaded gateway would,
    so Redis's output buffer for it fills up while a thread keeps publishing."""

    def __init__(self, release: threading.Event) -> None:
        super().__init__()
        self._release = release

    def on_message(self, channel: str, payload: bytes) -> None:
        if not self.messages:
            self._release.wait(timeout=30)
        super().on_message(channel, payload)


async def test_output_buffer_overflow_is_detected(
    bus: RedisBus, private_redis: RedisServer
) -> None:
    channel = _channel()
    with private_redis.client() as r:
        old = r.config_get("client-output-buffer-limit")["client-output-buffer-limit"]
        r.config_set("client-output-buffer-limit", "pubsub 256kb 0 0")
    release = threading.Event()
    collector = SlowCollector(release)
    sub = await bus.open(collector)
    await sub.subscribe([channel])
    killed = threading.Event()

    def flood() -> None:
        payload = b"x" * 16384
        raw = DEFAULT_KEYS.channel(channel)  # the name on Redis: the cluster's prefix first
        with redis.Redis(host="127.0.0.1", port=private_redis.port) as r:
            try:
                r.publish(raw, b"first")
                # Bounded: 4000 x 16 KiB = 64 MiB at most, far past 256 KiB plus socket buffers.
                for _ in range(4000):
                    if r.publish(raw, payload) == 0:  # Redis dropped the subscriber
                        killed.set()
                        return
            finally:
                release.set()

    try:
        thread = threading.Thread(target=flood)
        thread.start()
        await eventually(lambda: not thread.is_alive(), "flood finished", 60)
        thread.join()
        assert killed.is_set(), "Redis never dropped the slow subscriber"
        await eventually(lambda: collector.resets == 1, "on_reset after overflow")
        await _delivered_after_recovery(bus, collector, channel)
    finally:
        with private_redis.client() as r:
            r.config_set("client-output-buffer-limit", old)
        await sub.close()
