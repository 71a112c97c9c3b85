"""The Redis bus's optional `on_disconnect` hook (chat/stores/cluster/redis_bus.py): called when
the subscriber's connection is lost, before the `on_reset` that follows the resubscription, so
the gateway stops trusting its membership cache for the whole gap (chat/domain/membership.py);
and a listener without the hook is served as before."""

from __future__ import annotations

import uuid

from chat.stores.cluster.redis_bus import RedisBus
from tests.cluster.helpers import Collector, eventually
from tests.servers import RedisServer


class Recorder(Collector):
    def __init__(self) -> None:
        super().__init__()
        self.order: list[str] = []

    def on_disconnect(self) -> None:
        self.order.append("disconnect")

    def on_reset(self) -> None:
        super().on_reset()
        self.order.append("reset")


async def test_disconnect_is_told_at_once_and_before_the_reset(
    bus: RedisBus, private_redis: RedisServer
) -> None:
    recorder, plain = Recorder(), Collector()
    channel = f"user:{{u_{uuid.uuid4().hex}}}"
    subs = [await bus.open(recorder), await bus.open(plain)]
    for sub in subs:
        await sub.subscribe([channel])
    private_redis.kill()
    await eventually(lambda: recorder.order == ["disconnect"], "on_disconnect while Redis is down")
    assert recorder.resets == 0
    private_redis.start()
    await eventually(lambda: recorder.order == ["disconnect", "reset"], "on_reset once back")
    await eventually(lambda: plain.resets == 1, "a listener without the hook is reset as before")
    for sub in subs:
        await sub.close()
