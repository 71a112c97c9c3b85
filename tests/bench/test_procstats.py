"""The benchmark's counters (bench/procstats.py) on real servers: MongoDB round trips
(`mongo_requests`) per command from FerretDB's request counters, each command a client sends
once, the drivers' monitoring commands not at all; Redis commands (`redis_calls`) per command
from INFO commandstats, a script's own commands included."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pymongo
import pytest
import redis

from bench.procstats import mongo_requests, redis_calls
from tests.servers import RedisServer, unavailable
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
        assert mongo_requests(debug_port) - before == Counter(insert=1, find=1, update=1)


def test_redis_calls_count_each_command_and_what_a_script_runs(redis_server: RedisServer) -> None:
    port = redis_server.port
    client = redis.Redis(port=port)
    try:
        client.ping()  # connects (its handshake) and pings
        before = redis_calls(port)
        client.set("bench:probe", "1")
        client.get("bench:probe")
        client.eval("redis.call('GET', KEYS[1]); return redis.call('TIME')", 1, "bench:probe")
        spent = redis_calls(port) - before
    finally:
        client.close()
    # INFO itself counts once per reading (the `before` one shows in the second reading).
    assert spent == Counter({"set": 1, "get": 2, "eval": 1, "time": 1, "info": 1}), spent
