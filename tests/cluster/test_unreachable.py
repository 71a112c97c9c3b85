"""An unreachable dependency fails start-up fast with an error that names it."""

from __future__ import annotations

import gc

import pytest

from chat.config import Backend, Settings
from chat.domain.errors import Unavailable
from chat.stores.cluster import open_cluster_ports
from tests.cluster.conftest import RecordingQueue
from tests.servers import free_port


def _settings(redis_url: str, postgres_dsn: str, mongodb_uri: str) -> Settings:
    return Settings(
        backend=Backend.CLUSTER,
        redis_url=redis_url,
        postgres_dsn=postgres_dsn,
        mongodb_uri=mongodb_uri,
        mongodb_database="unused",
        jwt_secret="x" * 32,
    )


async def test_unreachable_redis_is_named(postgres_dsn: str, mongodb_uri: str) -> None:
    url = f"redis://:secret@127.0.0.1:{free_port()}/0"
    with pytest.raises(Unavailable) as raised:
        await open_cluster_ports(_settings(url, postgres_dsn, mongodb_uri), RecordingQueue())
    assert raised.value.message.startswith("Redis at redis://:***@127.0.0.1:")
    assert "secret" not in raised.value.message


async def test_unreachable_postgres_is_named(redis_url: str, mongodb_uri: str) -> None:
    dsn = f"postgresql://postgres@127.0.0.1:{free_port()}/chat"
    with pytest.raises(Unavailable) as raised:
        await open_cluster_ports(_settings(redis_url, dsn, mongodb_uri), RecordingQueue())
    assert raised.value.message.startswith(f"PostgreSQL at {dsn} is unavailable")


# PyMongo 4.20's async connect closes its socket on OSError and timeout but not on
# cancellation, so closing a client whose monitor is mid-connect leaves a never-connected
# socket for the garbage collector. Collected inside this test, so the ResourceWarning is
# attributed here (and ignored only here) instead of failing whichever test runs next.
@pytest.mark.filterwarnings("ignore:unclosed <socket.socket:ResourceWarning")
async def test_unreachable_mongodb_is_named(redis_url: str, postgres_dsn: str) -> None:
    uri = f"mongodb://127.0.0.1:{free_port()}/?serverSelectionTimeoutMS=500"
    with pytest.raises(Unavailable) as raised:
        await open_cluster_ports(_settings(redis_url, postgres_dsn, uri), RecordingQueue())
    assert raised.value.message.startswith(f"MongoDB at {uri} is unavailable")
    gc.collect()
