"""What the persistence path costs in round trips, counted on the real servers.

MongoDB: every command the process's PyMongo clients start (a command listener registered
before the runtime opens its client), so one count is one round trip. Redis: the server's own
`INFO commandstats` delta, so commands run inside Lua scripts count one by one, as they cost.
The sends go through `MessagingService.send` with the cluster runtime's real queue and an
in-process Dramatiq worker on the real RedisBroker; the sweep is not scheduled, so the counts
are the steady path's. The Redis count includes the send's own commands (rate limit, append):
docs/performance.md subtracts what the same sends cost with persistence switched off.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, replace

import dramatiq
import redis
from pymongo import monitoring

from chat.app.runtime import open_runtime
from chat.config import Settings
from chat.domain.accounts import Principal
from chat.domain.chat import Chat
from chat.domain.models import User
from tests.support.archived import archived_upto
from tests.support.fixtures import FAST_HASHER


class MongoCommands(monitoring.CommandListener):
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.on = False

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self.on:
            self.counts[event.command_name] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


LISTENER = MongoCommands()
monitoring.register(LISTENER)  # applies to every client created from now on


def redis_calls(url: str) -> Counter[str]:
    with redis.Redis.from_url(url) as r:
        stats = r.info("commandstats")
    return Counter({k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()})


@dataclass(frozen=True)
class Cost:
    rooms: int
    room_size: int
    messages: int
    mongo: Counter[str]
    redis: Counter[str]

    @property
    def mongo_per_1000(self) -> float:
        return sum(self.mongo.values()) * 1000 / self.messages

    @property
    def redis_per_message(self) -> float:
        return sum(self.redis.values()) / self.messages


async def measure(
    settings: Settings,
    *,
    rooms: int,
    room_size: int,
    messages: int,
    rate_per_s: float = 200,
) -> Cost:
    """Send `messages` round-robin over `rooms` conversations at about `rate_per_s`, with the
    worker running, and wait until the archive holds them all."""
    limits = replace(settings.limits, send_burst=10**6, send_rate_per_s=10**6)
    settings = replace(settings, sweep_interval_s=3600.0, limits=limits)
    rt = await open_runtime(settings, hasher=FAST_HASHER)
    # As `chatcluster worker` runs it (chat/app/workers.py): its idle consumers poll the broker
    # at most every 500 ms, which is part of what is counted.
    worker = dramatiq.Worker(rt.broker, worker_threads=2, worker_timeout=500)
    try:
        cids, senders = await make_rooms(rt.chat, rooms, room_size)
        worker.start()
        LISTENER.counts.clear()
        LISTENER.on = True
        before = redis_calls(settings.redis_url)
        gap = 1 / rate_per_s
        start = time.monotonic()
        for i in range(messages):
            room = i % rooms
            await rt.chat.messaging.send(senders[room], cids[room], f"m{i}", "x" * 64)
            await asyncio.sleep(max(0.0, start + (i + 1) * gap - time.monotonic()))
        last = {cid: await rt.chat.messaging.last_seq(cid) for cid in cids}
        deadline = time.monotonic() + 60
        polls = [0]
        for cid in cids:
            while await _watermark(rt.chat, cid, polls) < last[cid]:
                assert time.monotonic() < deadline, "the archive never caught up"
                await asyncio.sleep(0.05)
        # The job that found the set empty ends after the watermark moved: let it finish.
        await asyncio.to_thread(rt.broker.join, "persist", timeout=10_000)
        LISTENER.on = False
        after = redis_calls(settings.redis_url)
        mongo = Counter(LISTENER.counts)
        spent = after - before
        spent["hget"] -= polls[0]  # the polls above are the measurement's own
        return Cost(rooms, room_size, messages, mongo, spent)
    finally:
        LISTENER.on = False
        await asyncio.to_thread(worker.stop, 5000)
        await rt.close()


async def _watermark(chat: Chat, cid: str, polls: list[int]) -> int:
    """The progress the log records for the conversation: one `HGET` (its heads are new, so they
    carry the record and the archive is not asked), subtracted from the count."""
    polls[0] += 1
    return await archived_upto(chat, cid)


async def make_rooms(c: Chat, rooms: int, size: int) -> tuple[list[str], list[Principal]]:
    cids: list[str] = []
    owners: list[Principal] = []
    n = 0
    for _ in range(rooms):
        people: list[User] = []
        for _ in range(size):
            n += 1
            user = User(
                f"u{n}-{time.monotonic_ns()}", f"user{n}x{time.monotonic_ns() % 10**9}", "U", 0
            )
            await c.ports.accounts.create_user(user, "x")
            people.append(user)
        owner = Principal(people[0], "s")
        conv = await c.conversations.create_group(owner, "room", [p.id for p in people[1:]])
        cids.append(conv.id)
        owners.append(owner)
    return cids, owners
