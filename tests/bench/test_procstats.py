"""The benchmark's MongoDB round-trip count (bench/procstats.py `mongo_requests`), read from a
real FerretDB's request counters: each command a client sends counts once, the drivers'
monitoring commands not at all."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pymongo
import pytest

from bench.procstats import mongo_requests
from tests.servers import unavailable
from tools.harness.net import free_port
from tools.harness.recipes import ferretdb_proc
from tools.harness.versions import ferretdb_binary


@pytest.fixture
def ferretdb_with_metrics(tmp_path: Path) -> Iterator[tuple[int, int]]:
    if not ferretdb_binary().exists():
        unavailable(f"FerretDB is not built at {ferretdb_binary()}")
    debug_port = free_port()
    proc = ferretdb_proc(tmp_path, ferretdb_binary(), debug_port=debug_port)
    proc.start()
    try:
        assert proc.port is not None
        yield proc.port, debug_port
    finally:
        proc.stop()


def test_each_command_counts_once_and_monitoring_not_at_all(
    ferretdb_with_metrics: tuple[int, int],
) -> None:
    port, debug_port = ferretdb_with_metrics
    with pymongo.MongoClient(f"mongodb://127.0.0.1:{port}/") as client:
        client.admin.command("ping")  # connects (hello/ismaster) and pings: monitoring only
        before = mongo_requests(debug_port)
        collection = client.bench.probe
        collection.insert_many([{"n": 1}, {"n": 2}])  # one command, two documents
        collection.find_one({"n": 2})
        collection.update_one({"n": 1}, {"$set": {"n": 3}})
        client.admin.command("ping")
        assert mongo_requests(debug_port) - before == 3
