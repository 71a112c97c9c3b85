"""Real servers for the cluster tests: Redis, PostgreSQL 15 and FerretDB (MongoDB protocol).

Each server starts once per session, lazily (only when a test asks for it), on a free loopback
port in its own temporary directory, and is torn down at the end. The server objects can stop,
SIGKILL, start and restart their process on the same port and data directory, for chaos tests.

A missing binary skips the tests that need it on a laptop, but fails them when `CI=true`: CI
must never go green by skipping everything (as Dramatiq's tests/conftest.py does).

Isolation is cheap, per test: `fresh_redis_url` hands out a flushed logical database,
`fresh_postgres_dsn` creates and migrates a new schema, `fresh_mongodb_database` names a new
MongoDB database. `cluster_settings` bundles the three into a cluster-mode `Settings`.

Servers die with the test process (PR_SET_PDEATHSIG), so a killed run leaves no orphans.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import pytest
import redis

from chat.config import Backend, Settings
from tools.harness.recipes import ferretdb_proc
from tools.harness.supervisor import Proc
from tools.harness.versions import ferretdb_binary

ROOT = Path(__file__).resolve().parent.parent
PG_BIN = Path("/usr/lib/postgresql/15/bin")
CACHE = Path(os.environ.get("CHATCLUSTER_CACHE", "/var/cache/chatcluster"))
START_TIMEOUT_S = 60.0
REDIS_DATABASES = 64
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _toxiproxy_version() -> str:
    script = (ROOT / "scripts/setup.d/35-toxiproxy.sh").read_text()
    found = re.search(r"^TOXIPROXY_VERSION=(\S+)$", script, re.MULTILINE)
    assert found, "35-toxiproxy.sh must pin TOXIPROXY_VERSION"
    return found.group(1)


def toxiproxy_binary() -> Path:
    return CACHE / f"toxiproxy-{_toxiproxy_version()}" / "toxiproxy"


def unavailable(what: str) -> None:
    """Skip on a laptop without the server; fail under CI, where setup.sh installs everything."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} (CI=true: run scripts/setup.sh)", pytrace=False)
    pytest.skip(what)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll `check` until it holds; raise naming `what` when `timeout_s` runs out."""
    deadline = time.monotonic() + timeout_s
    delay = 0.01
    while True:
        with contextlib.suppress(Exception):
            if check():
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {timeout_s}s")
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


class ManagedServer:
    """One server process on a fixed port and data directory that survive restarts."""

    name = "server"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"{self.name}.log"

    user: str | None = None
    """Run the server as this user (PostgreSQL refuses root)."""

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, f"{self.name} already running"
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.command(),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            user=self.user,
            preexec_fn=_die_with_parent,
        )
        log.close()
        self._wait_ready()

    def _wait_ready(self) -> None:
        def check() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}"
                )
            return self.ready()

        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                wait_until(check, max(0.1, deadline - time.monotonic()), self.name)
                return
            except RuntimeError:
                raise
            except TimeoutError as exc:
                raise TimeoutError(f"{exc}\n{self.tail()}") from None

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """Graceful stop (SIGTERM); waits for the process to exit."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: no shutdown work, like a crashed node."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self, *, hard: bool = False) -> None:
        self.kill() if hard else self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class RedisServer(ManagedServer):
    name = "redis"
    replicaof: int | None = None
    """Start as a replica of the Redis on this loopback port (Sentinel may change it later)."""

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        return [
            "redis-server",
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.workdir),
            "--databases", str(REDIS_DATABASES),
            # Guarantee 1 of the design: an acked append is fsynced before the reply.
            "--appendonly", "yes",
            "--appendfsync", "always",
            "--save", "",
            "--daemonize", "no",
            *(["--replicaof", "127.0.0.1", str(self.replicaof)] if self.replicaof else []),
        ]  # fmt: skip

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, db=db, socket_timeout=5)

    def ready(self) -> bool:
        # A restarted Redis answers -LOADING while it replays the AOF: not ready yet.
        with self.client() as r:
            return bool(r.ping())


class PostgresServer(ManagedServer):
    """PostgreSQL refuses to run as root: as root, initdb and postgres run as the `postgres`
    user (Popen's `user=`, no shell), in a work directory it owns."""

    name = "postgres"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.data = workdir / "data"
        if os.geteuid() == 0:
            shutil.chown(workdir, "postgres", "postgres")
        initdb = [str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres"]
        subprocess.run(
            [*initdb, "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"],
            check=True,
            capture_output=True,
            cwd=workdir,
            user=self.user,
        )

    @property
    def user(self) -> str | None:
        return "postgres" if os.geteuid() == 0 else None

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def dsn_for(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def command(self) -> list[str]:
        return [
            str(PG_BIN / "postgres"),
            "-D", str(self.data),
            "-p", str(self.port),
            "-k", str(self.workdir),
            "-c", "listen_addresses=127.0.0.1",
            # Process crashes lose nothing without fsync (the page cache survives); machine
            # crashes are not what these tests simulate, and fsync costs seconds per run.
            "-c", "fsync=off",
            "-c", "full_page_writes=off",
            "-c", "max_connections=300",
        ]  # fmt: skip

    def ready(self) -> bool:
        # Accepting TCP is not enough: during start-up it answers "starting up".
        check = [str(PG_BIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]
        return subprocess.run(check, check=False).returncode == 0

    def stop(self) -> None:
        # SIGINT is PostgreSQL's "fast" shutdown: disconnect clients, checkpoint, exit.
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout=60)
        self.proc = None


class FerretServer(ManagedServer):
    """FerretDB with its SQLite backend: one file per database, no other server needed."""

    name = "ferretdb"

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def command(self) -> list[str]:
        return [
            str(ferretdb_binary()),
            f"--listen-addr=127.0.0.1:{self.port}",
            "--handler=sqlite",
            f"--sqlite-url=file:{self.workdir}/data/",
            f"--state-dir={self.workdir}",
            "--telemetry=disable",
            "--debug-addr=-",  # its default fixed port would collide between parallel runs
            "--log-level=warn",
        ]

    def start(self) -> None:
        (self.workdir / "data").mkdir(exist_ok=True)
        super().start()

    def ready(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1):
            return True


def _die_with_parent() -> None:
    """Runs in the child before exec: if pytest dies (a CI timeout, a ^C twice), the kernel
    kills the server too, so no orphan outlives the test run. Set after `user=` took effect,
    since a credential change clears it."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


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

    name = "sentinel"

    def __init__(self, workdir: Path, primary_port: int, quorum: int) -> None:
        super().__init__(workdir)
        self.config = workdir / "sentinel.conf"
        self.config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndaemonize no\ndir {workdir}\n"
            f"sentinel monitor {SENTINEL_MASTER} 127.0.0.1 {primary_port} {quorum}\n"
            f"sentinel down-after-milliseconds {SENTINEL_MASTER} {SENTINEL_DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {SENTINEL_MASTER} 10000\n"
            f"sentinel parallel-syncs {SENTINEL_MASTER} 1\n"
        )

    def command(self) -> list[str]:
        return ["redis-server", str(self.config), "--sentinel"]

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def ready(self) -> bool:
        with self.client() as r:
            return bool(r.ping())

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
        self.servers = [RedisServer(workdir / "a"), RedisServer(workdir / "b")]
        self.servers[1].replicaof = self.servers[0].port
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

    name = "toxiproxy"

    def command(self) -> list[str]:
        return [str(toxiproxy_binary()), "-host", "127.0.0.1", "-port", str(self.port)]

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

    def ready(self) -> bool:
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
