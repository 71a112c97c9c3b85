"""CHAT_REDIS_KEY_PREFIX (spec.redis.keyPrefix): every key, channel and Dramatiq queue of a
cluster lives under its prefix, with the `{...}` hash tags kept, so two clusters share a
Redis without seeing each other."""

from __future__ import annotations

import re
import uuid
from dataclasses import replace

import dramatiq
import redis

from chat.app.queueing import cluster_broker
from chat.config import Settings
from chat.domain.channels import conversation_channel
from chat.domain.models import EventDraft, EventKind, PresenceState
from chat.stores.cluster import open_cluster_ports
from tests.cluster.conftest import RecordingQueue
from tests.cluster.helpers import Collector, eventually

TAGGED = re.compile(r"^team-b:[a-z_-]+:\{[^{}]+\}(:[a-z_]+)?$")


async def test_every_key_lands_under_the_prefix(cluster_settings: Settings) -> None:
    settings = replace(cluster_settings, redis_key_prefix="team-b:")
    other = await open_cluster_ports(cluster_settings, RecordingQueue())  # default "chat:"
    opened = await open_cluster_ports(settings, RecordingQueue())
    broker = cluster_broker(settings)
    ports, cid, uid = opened.ports, f"c_{uuid.uuid4().hex}", f"u_{uuid.uuid4().hex}"
    mine, theirs = Collector(), Collector()
    sub = await ports.bus.open(mine)
    other_sub = await other.ports.bus.open(theirs)
    try:
        channel = conversation_channel(cid)
        await sub.subscribe([channel])
        await other_sub.subscribe([channel])

        # Also writes the persistence signal (the dirty set and the schedule).
        appended = await ports.log.append(EventDraft(cid, EventKind.MESSAGE, uid, "k1", "hello"))
        assert appended.persist_job is not None
        await ports.sessions.create(f"f_{uuid.uuid4().hex}", uid, "hash", 60)
        await ports.presence.connect(uid, "conn-1", 30)
        await ports.presence.heartbeat(uid, "conn-1", PresenceState.ONLINE, 30)
        await ports.limiter.allow(f"send:{uid}", 5, 20)

        @dramatiq.actor(broker=broker, queue_name="persist", actor_name="probe")
        def probe() -> None: ...

        probe.send()

        # The subscriber of this cluster gets the event under the domain's channel name; the
        # other cluster, subscribed to the same conversation id, gets nothing.
        await eventually(lambda: len(mine.messages) == 1, "delivery under the prefix")
        assert mine.messages[0][0] == channel
        await other.ports.bus.publish(channel, b"other cluster")
        await eventually(lambda: len(theirs.messages) == 1, "the other cluster's own delivery")
        assert len(mine.messages) == 1

        with redis.Redis.from_url(settings.redis_url) as r:
            keys = sorted(k.decode() for k in r.scan_iter(count=1000))
        assert keys, "nothing was written"
        outside = [k for k in keys if not k.startswith("team-b:")]
        assert outside == [], outside
        dramatiq_keys = [k for k in keys if k.startswith("team-b:dramatiq:")]
        assert "team-b:dramatiq:persist.msgs" in dramatiq_keys, keys
        stores = [k for k in keys if not k.startswith(("team-b:dramatiq:", "team-b:log:backlog"))]
        for kind in ("log", "session", "user_sessions", "presence", "bucket", "persist"):
            assert any(k.startswith(f"team-b:{kind}:{{") for k in stores), (kind, keys)
        untagged = [k for k in stores if not TAGGED.match(k)]
        assert untagged == [], untagged
    finally:
        await sub.close()
        await other_sub.close()
        broker.close()
        # Dramatiq's close() leaves its Redis client's pooled sockets to the garbage collector.
        broker.client.connection_pool.disconnect()
        await opened.close()
        await other.close()
