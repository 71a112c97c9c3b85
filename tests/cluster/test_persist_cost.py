"""Round trips of the persistence path, counted on the real servers (tests/support/persist_cost.py);
docs/performance.md ("Persistence path") reports them. The bounds are counts, not timings."""

from __future__ import annotations

import pytest

from chat.config import Settings
from tests.support.persist_cost import measure


@pytest.mark.parametrize(("rooms", "room_size"), [(6, 10), (2, 100)])
async def test_persistence_round_trips(
    cluster_settings: Settings, rooms: int, room_size: int
) -> None:
    cost = await measure(cluster_settings, rooms=rooms, room_size=room_size, messages=300)
    print(
        f"\nrooms of {room_size} x{rooms}: MongoDB {cost.mongo_per_1000:.0f} per 1000 messages "
        f"{dict(cost.mongo)}; Redis {cost.redis_per_message:.1f} commands per message "
        f"{dict(cost.redis.most_common(12))}"
    )
    # Before batch jobs: 2 800-4 900 MongoDB round trips per 1000 messages and 28-35 Redis
    # commands per message here; with batch jobs but a watermark update per conversation per
    # job, 83-213. Counts, not timings; generous for a loaded machine, whose slower sends
    # spread over more (smaller) jobs.
    assert 0 < cost.mongo_per_1000 <= 60
    assert cost.redis_per_message <= 24
    # A job writes no watermark (the log records its progress; the sweep, off here, copies
    # it) and reads none (the log's heads carry the record): inserts only, no edits sent.
    assert set(cost.mongo) <= {"insert"}, cost.mongo
