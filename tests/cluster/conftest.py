"""Cluster-only fixtures: every port wired to fresh databases on the session's real servers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chat.config import Settings
from chat.stores.cluster import ClusterPorts, open_cluster_ports
from chat.stores.cluster.redis_bus import RedisBus
from chat.stores.cluster.redis_conn import make_client
from tests.servers import RedisServer

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything here needs the servers: mark it `cluster` (a conftest `pytestmark` would
    not reach the test modules)."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.cluster)


class RecordingQueue:
    """The JobQueue port, recording instead of enqueueing: these tests are about the stores."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def persist_batch(self, token: str) -> None:
        self.asked.append(token)


@pytest.fixture
async def cluster(cluster_settings: Settings) -> AsyncIterator[ClusterPorts]:
    opened = await open_cluster_ports(cluster_settings, RecordingQueue())
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def bus(private_redis: RedisServer) -> AsyncIterator[RedisBus]:
    """A RedisBus on a Redis of its own (tests that kill or restart it)."""
    client = make_client(private_redis.url)
    bus = RedisBus(client, private_redis.url)
    try:
        yield bus
    finally:
        await bus.close()
        await client.aclose()
