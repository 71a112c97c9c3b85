"""The servers the cluster runs on, as supervised children on free loopback ports: the one
recipe for each that the tests and the local cluster share.

- redis-server with AOF and `appendfsync always`: guarantee 1 of the design (an acked append is
  fsynced before the reply) holds in every test and in the dev cluster.
- PostgreSQL 15, initialised once per data directory; as root, it runs as the `postgres` user.
- FerretDB (the MongoDB protocol) on SQLite files, or on a PostgreSQL.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path

from tools.harness.net import free_port, tcp_open
from tools.harness.supervisor import Proc
from tools.harness.versions import PG_BIN


def redis_proc(
    workdir: Path,
    port: int | None = None,
    *,
    databases: int | None = None,
    replicaof: int | None = None,
) -> Proc:
    """redis-server with its AOF in `workdir`. `databases`: logical databases (Redis' default
    16); `replicaof`: start as a replica of the Redis on that loopback port."""
    port = port or free_port()
    argv = [
        "redis-server",
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(workdir),
        *(["--databases", str(databases)] if databases else []),
        # Guarantee 1 of the design: an acked append is fsynced before the reply.
        "--appendonly", "yes",
        "--appendfsync", "always",
        "--save", "",
        "--daemonize", "no",
        *(["--replicaof", "127.0.0.1", str(replicaof)] if replicaof else []),
    ]  # fmt: skip
    return Proc("redis", argv, workdir / "redis.log", port=port, ready=redis_ready, cwd=workdir)


def redis_ready(p: Proc) -> bool:
    """PING answers PONG: a restarted Redis answers -LOADING while it replays the AOF, and
    that is not ready yet."""
    with socket.create_connection(("127.0.0.1", p.port), timeout=1) as s:
        s.sendall(b"PING\r\n")
        return s.recv(64).startswith(b"+PONG")


def postgres_proc(workdir: Path, port: int | None = None, *, durable: bool = True) -> Proc:
    """PostgreSQL 15 with its data in `workdir/data`, created on first use and kept after.

    PostgreSQL refuses root: as root, initdb and postgres run as the `postgres` user in a
    directory it owns. `durable=False` (the tests) turns fsync off: a process crash loses
    nothing without it (the page cache survives); machine crashes are not what the tests
    simulate, and fsync costs seconds per run."""
    port = port or free_port()
    user = "postgres" if os.geteuid() == 0 else None
    workdir.mkdir(parents=True, exist_ok=True)
    if user is not None:
        shutil.chown(workdir, user, user)
    data = workdir / "data"
    if not (data / "PG_VERSION").exists():
        initdb = [str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"]
        subprocess.run(  # noqa: S603 (fixed argv, no shell)
            [*initdb, "-E", "UTF8", "--no-instructions", *([] if durable else ["--no-sync"])],
            check=True,
            capture_output=True,
            cwd=workdir,
            user=user,
        )
    unsafe = ["-c", "fsync=off", "-c", "full_page_writes=off"]
    argv = [
        str(PG_BIN / "postgres"),
        "-D", str(data),
        "-p", str(port),
        "-k", str(workdir),
        "-c", "listen_addresses=127.0.0.1",
        *([] if durable else unsafe),
        "-c", "max_connections=300",
    ]  # fmt: skip
    # SIGINT is PostgreSQL's "fast" shutdown: disconnect clients, checkpoint, exit.
    return Proc(
        "postgres",
        argv,
        workdir / "postgres.log",
        port=port,
        ready=postgres_ready,
        stop_signal=signal.SIGINT,
        user=user,
        cwd=workdir,
    )


def postgres_ready(p: Proc) -> bool:
    """pg_isready: accepting TCP is not enough, during start-up it answers "starting up"."""
    check = [str(PG_BIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(p.port)]
    return subprocess.run(check, check=False).returncode == 0  # noqa: S603 (fixed argv)


def ferretdb_proc(
    workdir: Path,
    binary: Path,
    port: int | None = None,
    postgresql_url: str = "",
    debug_port: int | None = None,
) -> Proc:
    """FerretDB on PostgreSQL when `postgresql_url` is given, else on SQLite files in
    `workdir/data` (one file per database). Its backend pool defaults to max(4, CPUs)
    connections; `pool_max_conns` in the URL raises it. With `debug_port`, its debug HTTP
    server (`/debug/metrics`: Prometheus counters, requests by command) listens there."""
    port = port or free_port()
    (workdir / "data").mkdir(parents=True, exist_ok=True)
    if postgresql_url:
        backend = ["--handler=postgresql", f"--postgresql-url={postgresql_url}"]
    else:
        backend = ["--handler=sqlite", f"--sqlite-url=file:{workdir}/data/"]
    argv = [
        str(binary),
        f"--listen-addr=127.0.0.1:{port}",
        *backend,
        f"--state-dir={workdir}",
        "--telemetry=disable",
        # Its default fixed port would collide with another instance.
        f"--debug-addr=127.0.0.1:{debug_port}" if debug_port else "--debug-addr=-",
        "--log-level=warn",
    ]
    return Proc(
        "ferretdb", argv, workdir / "ferretdb.log", port=port, ready=lambda p: tcp_open(p.port)
    )
