"""The contract suite runs unchanged against every implementation of the ports."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chat.config import Backend, Settings
from chat.domain.chat import Ports


class RecordingQueue:
    """Stands in for Dramatiq here: the suite tests the stores, not the queue."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def persist_batch(self, token: str) -> None:
        self.asked.append(token)


@pytest.fixture(params=["embedded", "cluster"])
def backend_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Synchronous, so it may pull the cluster fixtures (async ones included) by name."""
    if request.param == "embedded":
        return Settings(data_dir=tmp_path)
    settings: Settings = request.getfixturevalue("cluster_settings")
    assert settings.backend is Backend.CLUSTER
    return settings


@pytest.fixture
async def ports(backend_settings: Settings) -> AsyncIterator[Ports]:
    queue = RecordingQueue()
    if backend_settings.backend is Backend.EMBEDDED:
        from chat.stores.embedded import open_embedded_ports

        opened = await open_embedded_ports(backend_settings, queue)
        yield opened.ports
        await opened.close()
        return
    from chat.stores.cluster import open_cluster_ports

    cluster = await open_cluster_ports(backend_settings, queue)
    yield cluster.ports
    await cluster.close()
