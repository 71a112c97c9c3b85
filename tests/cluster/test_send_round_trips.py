"""A send is one Redis round trip (issue 14): the rate limit, dedupe, seq, append, publish and
persistence signal are one script call, counted on a Redis of the test's own.

`INFO commandstats` counts commands run inside a script one by one, under their own names:
exactly one EVALSHA per send, the limiter's own script never loaded, and inside the script the
eight commands of `PER_SEND` (issue 14's target: at most 10 per message; 14 before the bucket
became a string, dedupe an HSETNX, dedupe_ts the trim's, the schedule claim the first dirtying
append's, and "already dirty" a field of the head, read and written with the seq; 9 before the
dedupe field moved into the head, looked up and written with the seq too)."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
import redis

from chat.config import Settings
from chat.domain.accounts import Principal
from chat.domain.chat import messaging_service
from chat.domain.limits import Limits
from chat.domain.models import Conversation, ConversationKind, Member, Role, User
from chat.stores.cluster import ClusterPorts, open_cluster_ports
from chat.stores.cluster.redis_ratelimit import _TAKE
from tests.cluster.conftest import RecordingQueue
from tests.servers import RedisServer

SENDS = 20

# A fresh send into a conversation already dirty (redis_log_scripts.py `APPEND`, with the
# bucket function): the head's seq, dirty mark and dedupe lookup, the clock, the bucket's GET
# and SET PX, the event, the new head with its dedupe field, the publish, the script.
PER_SEND = {"hmget", "time", "get", "set", "xadd", "hset", "publish", "evalsha"}


def _calls(r: redis.Redis) -> Counter[str]:
    stats = r.info("commandstats")
    return Counter({k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()})


def _script_loaded(url: str, script: str) -> bool:
    sha = hashlib.sha1(script.encode()).hexdigest()  # Redis names scripts by their SHA-1
    with redis.Redis.from_url(url) as r:
        return bool(r.script_exists(sha)[0])


@pytest.fixture
async def own_redis_cluster(
    cluster_settings: Settings, private_redis: RedisServer
) -> AsyncIterator[tuple[ClusterPorts, str]]:
    url = private_redis.url
    opened = await open_cluster_ports(replace(cluster_settings, redis_url=url), RecordingQueue())
    try:
        yield opened, url
    finally:
        await opened.close()


async def test_a_send_is_one_evalsha_and_no_limiter_script(
    own_redis_cluster: tuple[ClusterPorts, str],
) -> None:
    cluster, url = own_redis_cluster
    ports = cluster.ports
    stamp = time.monotonic_ns()
    alice = User(f"u_a{stamp}", f"alice{stamp}", "Alice", 0)
    await ports.accounts.create_user(alice, "x")
    cid = f"c_{uuid.uuid4().hex}"
    await ports.conversations.create(
        Conversation(
            cid, ConversationKind.GROUP, "room", alice.id, 0, (Member(alice.id, Role.OWNER, 0, 0),)
        ),
        None,
    )
    messaging = messaging_service(ports, Limits(send_burst=SENDS + 1))
    who = Principal(alice, "s")
    # The first send loads the script (EVALSHA, NOSCRIPT, SCRIPT LOAD, EVALSHA) and the log's
    # head (`start`, below the counted sends); then the steady path is counted.
    await messaging.start_log(cid)
    assert (await messaging.send(who, cid, "warm", "x")).event.seq == 1
    with redis.Redis.from_url(url) as counter:  # one connection: its handshake is not counted
        before = _calls(counter)
        for i in range(SENDS):
            await messaging.send(who, cid, f"m{i}", "x")
        delta = _calls(counter) - before
    delta["info"] -= 1  # the second INFO itself
    delta = +delta
    per_send = {name: calls / SENDS for name, calls in sorted(delta.items())}
    print(f"\nRedis commands per send, script included: {sum(per_send.values()):.1f} {per_send}")
    assert per_send == dict.fromkeys(sorted(PER_SEND), 1.0), per_send
    assert sum(per_send.values()) <= 8
    assert await ports.log.last_seq(cid) == SENDS + 1
    # The limiter's own script never ran on this Redis: the sends were charged by the append.
    assert not _script_loaded(url, _TAKE)
    await ports.limiter.allow(f"send:{alice.id}", 1.0, 1)
    assert _script_loaded(url, _TAKE), "the check above could not have failed"
