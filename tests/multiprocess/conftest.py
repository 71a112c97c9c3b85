"""Real processes: `python -m chat ws|api|worker` subprocesses and haproxy in front of them
(`tools.devcluster.cluster.AppCluster`), on the session's Redis/PostgreSQL/FerretDB from
tests/servers.py (or a test's private ones). Clients reach everything through haproxy's one
URL, as browsers do through an ingress."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest

from tests.servers import PostgresServer, ferretdb_on_postgres_proc, unavailable
from tools.devcluster.cluster import AppCluster, Backing
from tools.harness.supervisor import Proc

HERE = Path(__file__).parent

# Each cluster process is given these: sends are limited by the tests, not the bucket; the sweep
# runs often so a job lost with a killed worker is found again within seconds; drains are short.
TEST_ENV = {
    "CHAT_LIMIT_SEND_RATE_PER_S": "1000",
    "CHAT_LIMIT_SEND_BURST": "1000",
    "CHAT_SWEEP_INTERVAL_S": "1",
    "CHAT_DRAIN_TIMEOUT_S": "3",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.cluster)


class ClusterFactory(Protocol):
    def __call__(
        self,
        backing: Backing,
        *,
        gateways: int = 2,
        workers: int = 2,
        env: dict[str, str] | None = None,
    ) -> AppCluster: ...


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[ClusterFactory]:
    """Starts an AppCluster (migrate, gateways, one API, workers, haproxy; waits until haproxy
    sees every backend UP); stops every process at the end of the test."""
    if shutil.which("haproxy") is None:
        unavailable("haproxy is not installed (scripts/setup.d/10-apt.sh)")
    started: list[AppCluster] = []

    def make(
        backing: Backing,
        *,
        gateways: int = 2,
        workers: int = 2,
        env: dict[str, str] | None = None,
    ) -> AppCluster:
        cluster = AppCluster(
            backing,
            tmp_path / f"cluster{len(started)}",
            gateways=gateways,
            workers=workers,
            env={**TEST_ENV, **(env or {})},
        )
        started.append(cluster)
        cluster.start()
        return cluster

    yield make
    for cluster in started:
        cluster.stop()


@pytest.fixture
def backing(
    fresh_redis_url: str, fresh_postgres_dsn: str, mongodb_uri: str, fresh_mongodb_database: str
) -> Backing:
    """Fresh databases on the session's servers (shared with other tests: never killed)."""
    return Backing(fresh_redis_url, fresh_postgres_dsn, mongodb_uri, fresh_mongodb_database)


@pytest.fixture
def ferretdb_on_postgres(postgres_server: PostgresServer, tmp_path: Path) -> Iterator[Proc]:
    """A FerretDB of the test's own (for outages), on the PostgreSQL handler so its data
    outlives a SIGKILL, with its default backend pool (max(4, CPUs) connections): the smallest
    pool is where a write pattern that holds connections would show."""
    with ferretdb_on_postgres_proc(postgres_server, tmp_path / "ferretdb") as proc:
        yield proc
