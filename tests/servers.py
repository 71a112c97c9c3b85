"""Real servers for the cluster tests: Redis, PostgreSQL 15 and FerretDB (MongoDB protocol).

Each server starts once per session, lazily (only when a test asks for it), on a free loopback
port in its own temporary directory, and is torn down at the end. The server objects can stop,
SIGKILL, start and restart their process on the same port and data directory, for chaos tests.

A missing binary skips the tests that need it on a laptop, but fails them when `CI=true`: CI
must never go green by skipping everything (as Dramatiq's tests/conftest.py does).

Isolation is cheap, per test: `fresh_redis_url` hands out a flushed logical database,
`fresh_postgres_dsn` creates and migrates a new schema, `fresh_mongodb_database` names a new
MongoDB database. `cluster_settings` bundles the three into a cluster-mode `Settings`.

Each server is a `tools.harness` supervised child, built from the recipe the local cluster
(`python -m tools.devcluster`) uses too; servers die with the test process (PR_SET_PDEATHSIG),
so a killed run leaves no orphans.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import subprocess
import tempfile
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
import redis

from chat.config import Backend, Settings
from tools.harness.net import free_port
from tools.harness.recipes import ferretdb_proc, postgres_proc, redis_proc, redis_ready
from tools.harness.supervisor import START_TIMEOUT_S, Proc, wait_until
from tools.harness.versions import PG_BIN, cache_dir, ferretdb_binary

ROOT = Path(__file__).resolve().parent.parent
REDIS_DATABASES = 64


def _toxiproxy_version() -> str:
    script = (ROOT / "scripts/setup.d/35-toxiproxy.sh").read_text()
    found = re.search(r"^TOXIPROXY_VERSION=(\S+)$", script, re.MULTILINE)
    assert found, "35-toxiproxy.sh must pin TOXIPROXY_VERSION"
    return found.group(1)


def toxiproxy_binary() -> Path:
    return cache_dir() / f"toxiproxy-{_toxiproxy_version()}" / "toxiproxy"


def unavailable(what: str) -> None:
    """Skip on a laptop without the server; fail under CI, where setup.sh installs everything."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} (CI=true: run scripts/setup.sh)", pytrace=False)
    pytest.skip(what)


class ManagedServer:
    """One server process (a `tools.harness` supervised child, from the recipe the local
    cluster uses too) on a fixed port and data directory that survive restarts."""

    def __init__(self, process: Proc) -> None:
        self.process = process

    @property
    def port(self) -> int:
        return self.process.port

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        """The running process (to send it SIGSTOP, say), or None when it is not running."""
        return self.process.popen if self.process.running else None

    @property
    def running(self) -> bool:
        return self.process.running

    def start(self) -> None:
        """Start and wait until ready; a child that exits meanwhile fails with its log."""
        self.process.start()

    def stop(self) -> None:
        """Graceful stop (the server's stop signal, SIGKILL after a timeout); waits for it."""
        self.process.stop()

    def kill(self) -> None:
        """SIGKILL: no shutdown work, like a crashed node."""
        self.process.kill()

    def restart(self, *, hard: bool = False) -> None:
        self.process.restart(hard=hard)

    def tail(self, lines: int = 30) -> str:
        return self.process.tail(lines)


class RedisServer(ManagedServer):
    def __init__(self, workdir: Path, replicaof: int | None = None) -> None:
        """`replicaof`: start as a replica of the Redis on this loopback port (Sentinel may
        change it later)."""
        super().__init__(redis_proc(workdir, databases=REDIS_DATABASES, replicaof=replicaof))

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, db=db, socket_timeout=5)


class PostgresServer(ManagedServer):
    """PostgreSQL 15 (initdb at construction), without fsync: see `postgres_proc`."""

    def __init__(self, workdir: Path) -> None:
        super().__init__(postgres_proc(workdir, durable=False))

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def dsn_for(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"


class FerretServer(ManagedServer):
    """FerretDB with its SQLite backend: one file per database, no other server needed."""

    def __init__(self, workdir: Path) -> None:
        super().__init__(ferretdb_proc(workdir, ferretdb_binary()))

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"


@contextlib.contextmanager
def _workdir(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"chatcluster-{prefix}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# --- the servers -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        unavailable("redis-server is not installed")
    with _workdir("redis") as wd:
        server = RedisServer(wd)
        server.start()
        try:
            yield server
        finally:
            server.kill()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    if not (PG_BIN / "postgres").exists():
        unavailable(f"PostgreSQL 15 is not installed in {PG_BIN}")
    with _workdir("postgres") as wd:
        wd.chmod(0o755)
        server = PostgresServer(wd)
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="session")
def ferretdb_server() -> Iterator[FerretServer]:
    if not ferretdb_binary().exists():
        unavailable(f"FerretDB is not built at {ferretdb_binary()}")
    with _workdir("ferretdb") as wd:
        server = FerretServer(wd)
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A Redis of the test's own (about 50 ms to start), for tests that kill it, pause it or
    change its configuration without disturbing anyone sharing the session's server."""
    if shutil.which("redis-server") is None:
        unavailable("redis-server is not installed")
    with _workdir("redis") as wd:
        server = RedisServer(wd)
        server.start()
        try:
            yield server
        finally:
            server.kill()


SENTINEL_MASTER = "chatmaster"
SENTINEL_DOWN_AFTER_MS = 1000
"""How long a primary is unanswering before a Sentinel calls it down (short, for the tests;
production uses several seconds so a GC pause or a blip does not fail over)."""


class SentinelServer(ManagedServer):
    """A Redis Sentinel (redis-server in sentinel mode, as Debian's redis-sentinel is); it
    rewrites its own config file, so each has one in its work directory."""

    def __init__(self, workdir: Path, primary_port: int, quorum: int) -> None:
        port = free_port()
        config = workdir / "sentinel.conf"
        config.write_text(
            f"port {port}\nbind 127.0.0.1\ndaemonize no\ndir {workdir}\n"
            f"sentinel monitor {SENTINEL_MASTER} 127.0.0.1 {primary_port} {quorum}\n"
            f"sentinel down-after-milliseconds {SENTINEL_MASTER} {SENTINEL_DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {SENTINEL_MASTER} 10000\n"
            f"sentinel parallel-syncs {SENTINEL_MASTER} 1\n"
        )
        argv = ["redis-server", str(config), "--sentinel"]
        log = workdir / "sentinel.log"
        super().__init__(Proc("sentinel", argv, log, port=port, ready=redis_ready, cwd=workdir))

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def master_port(self) -> int:
        with self.client() as r:
            _, port = r.execute_command("SENTINEL", "get-master-addr-by-name", SENTINEL_MASTER)
            return int(port)

    def knows_everyone(self, replicas: int, sentinels: int) -> bool:
        with self.client() as r:
            found = r.execute_command("SENTINEL", "replicas", SENTINEL_MASTER)
            others = r.execute_command("SENTINEL", "sentinels", SENTINEL_MASTER)
        return len(found) >= replicas and len(others) >= sentinels - 1


class SentinelGroup:
    """A primary, one replica and three Sentinels (quorum 2) on loopback ports."""

    def __init__(self, workdir: Path) -> None:
        (workdir / "a").mkdir()
        (workdir / "b").mkdir()
        primary = RedisServer(workdir / "a")
        self.servers = [primary, RedisServer(workdir / "b", replicaof=primary.port)]
        self.sentinels = []
        for i in range(3):
            (workdir / f"s{i}").mkdir()
            self.sentinels.append(SentinelServer(workdir / f"s{i}", self.servers[0].port, 2))

    @property
    def addresses(self) -> str:
        """CHAT_REDIS_SENTINELS for these Sentinels."""
        return ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)

    def start(self) -> None:
        for server in self.servers:
            server.start()
        wait_until(self.replica_in_sync, START_TIMEOUT_S, "replica in sync")
        for sentinel in self.sentinels:
            sentinel.start()
        wait_until(
            lambda: all(s.knows_everyone(1, 3) for s in self.sentinels),
            START_TIMEOUT_S,
            "Sentinels discovering the replica and each other",
        )

    def primary(self) -> RedisServer:
        port = self.sentinels[0].master_port()
        return next(s for s in self.servers if s.port == port)

    def replica_in_sync(self) -> bool:
        with self.primary_by_role().client() as r:
            info = r.info("replication")
        replica = info.get("slave0")
        return isinstance(replica, dict) and replica.get("state") == "online"

    def primary_by_role(self) -> RedisServer:
        for server in self.servers:
            if server.running:
                with server.client() as r:
                    if r.info("replication")["role"] == "master":
                        return server
        raise RuntimeError("no running primary")

    def stop(self) -> None:
        for server in [*self.sentinels, *self.servers]:
            server.kill()


class ToxiproxyServer(ManagedServer):
    """Toxiproxy: TCP proxies with injectable faults (toxics), driven over its HTTP API."""

    def __init__(self, workdir: Path) -> None:
        port = free_port()
        argv = [str(toxiproxy_binary()), "-host", "127.0.0.1", "-port", str(port)]
        log = workdir / "toxiproxy.log"
        super().__init__(Proc("toxiproxy", argv, log, port=port, ready=self._answers, cwd=workdir))

    def _call(self, method: str, path: str, body: object = None) -> object:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def _answers(self, _: Proc) -> bool:
        self._call("GET", "/proxies")  # raises until the API answers
        return True

    def proxy(self, name: str, upstream_port: int) -> int:
        """A proxy to 127.0.0.1:`upstream_port`; returns its listening port."""
        port = free_port()
        self._call(
            "POST",
            "/proxies",
            {"name": name, "listen": f"127.0.0.1:{port}", "upstream": f"127.0.0.1:{upstream_port}"},
        )
        return port

    def add_toxic(
        self,
        proxy: str,
        name: str,
        kind: str,
        attributes: dict[str, int],
        stream: str = "downstream",
    ) -> None:
        """Add a toxic (`latency`, `bandwidth`, `timeout`, `reset_peer`, ...) to a proxy."""
        body = {"name": name, "type": kind, "stream": stream, "toxicity": 1.0}
        self._call("POST", f"/proxies/{proxy}/toxics", {**body, "attributes": attributes})

    def remove_toxic(self, proxy: str, name: str) -> None:
        self._call("DELETE", f"/proxies/{proxy}/toxics/{name}")


@pytest.fixture
def toxiproxy() -> Iterator[ToxiproxyServer]:
    """A Toxiproxy of the test's own (scripts/setup.d/35-toxiproxy.sh builds it)."""
    if not toxiproxy_binary().exists():
        unavailable(f"Toxiproxy is not built at {toxiproxy_binary()}")
    with _workdir("toxiproxy") as wd:
        server = ToxiproxyServer(wd)
        server.start()
        try:
            yield server
        finally:
            server.kill()


@pytest.fixture
def redis_sentinel_group() -> Iterator[SentinelGroup]:
    """A Redis primary + replica watched by three Sentinels, all the test's own (it may kill
    any of them)."""
    if shutil.which("redis-server") is None:
        unavailable("redis-server is not installed (Debian's redis package)")
    with _workdir("sentinel") as wd:
        group = SentinelGroup(wd)
        try:
            group.start()
            yield group
        finally:
            group.stop()


@pytest.fixture
def private_ferretdb() -> Iterator[FerretServer]:
    """A FerretDB of the test's own, for outage tests."""
    if not ferretdb_binary().exists():
        unavailable(f"FerretDB is not built at {ferretdb_binary()}")
    with _workdir("ferretdb") as wd:
        server = FerretServer(wd)
        server.start()
        try:
            yield server
        finally:
            server.kill()


@contextlib.contextmanager
def ferretdb_on_postgres_proc(
    postgres: PostgresServer, workdir: Path, pool_max_conns: int | None = None
) -> Iterator[Proc]:
    """A FerretDB of the caller's own on the PostgreSQL handler (its data outlives a SIGKILL);
    `pool_max_conns` sets its backend pool (default max(4, CPUs) connections)."""
    if not ferretdb_binary().exists():
        unavailable(f"FerretDB is not built at {ferretdb_binary()}")
    url = f"postgres://postgres@127.0.0.1:{postgres.port}/postgres"
    if pool_max_conns is not None:
        url += f"?pool_max_conns={pool_max_conns}"
    proc = ferretdb_proc(workdir, ferretdb_binary(), postgresql_url=url)
    proc.start()
    try:
        yield proc
    finally:
        proc.kill()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture(scope="session")
def postgres_dsn(postgres_server: PostgresServer) -> str:
    return postgres_server.dsn


@pytest.fixture(scope="session")
def mongodb_uri(ferretdb_server: FerretServer) -> str:
    return ferretdb_server.uri


# --- cheap isolation per test ------------------------------------------------------------------

_redis_dbs = itertools.cycle(range(1, REDIS_DATABASES))


@pytest.fixture
def fresh_redis_url(redis_server: RedisServer) -> str:
    """A flushed logical database (1..63, round robin; 0 is left for session-wide use).

    Pub/sub channels are global to the server, not per database: tests keep them apart with
    random conversation ids."""
    db = next(_redis_dbs)
    with redis_server.client(db) as r:
        r.flushdb()
    return f"redis://127.0.0.1:{redis_server.port}/{db}"


@pytest.fixture
async def fresh_postgres_dsn(postgres_server: PostgresServer) -> str:
    """A new, migrated schema, selected through the DSN's `search_path` (asyncpg passes unknown
    DSN parameters on as server settings). A schema costs a few milliseconds; a database
    cloned from a template costs half a second."""
    from chat.stores.cluster.migrations import migrate_postgres

    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(postgres_server.dsn)
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        await admin.close()
    dsn = f"{postgres_server.dsn}?search_path={schema}"
    await migrate_postgres(dsn)
    return dsn


@pytest.fixture
def fresh_mongodb_database(mongodb_uri: str) -> str:
    """A database name never used before; FerretDB creates it on first write."""
    return f"t_{uuid.uuid4().hex[:16]}"


@pytest.fixture
def cluster_settings(
    fresh_redis_url: str,
    fresh_postgres_dsn: str,
    mongodb_uri: str,
    fresh_mongodb_database: str,
) -> Settings:
    return Settings(
        backend=Backend.CLUSTER,
        redis_url=fresh_redis_url,
        postgres_dsn=fresh_postgres_dsn,
        mongodb_uri=mongodb_uri,
        mongodb_database=fresh_mongodb_database,
        jwt_secret="test-secret-" + "x" * 32,
        metrics_port=0,  # tests that need the metrics listener give it a free port
    )
