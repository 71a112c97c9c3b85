"""The three servers the local cluster runs on: redis-server, PostgreSQL 15 and FerretDB on
that PostgreSQL, under one directory, from the harness's recipes."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from tools.devcluster.cluster import Backing
from tools.harness.net import free_port
from tools.harness.recipes import ferretdb_proc, postgres_proc, redis_proc
from tools.harness.supervisor import Proc
from tools.harness.versions import PG_BIN

FERRETDB_POOL_MAX_CONNS = 64
"""FerretDB's backend pool on PostgreSQL: raised from its default max(4, CPUs) for
throughput."""


@dataclass
class Services:
    """redis-server, PostgreSQL 15 and FerretDB under one directory."""

    root: Path
    ferretdb: Path
    procs: list[Proc] = field(default_factory=list)
    ferretdb_debug_port: int = 0
    """FerretDB's `/debug/metrics` port, once started."""

    def missing(self) -> list[str]:
        """What is not installed, each with how to install it."""
        out = []
        if shutil.which("redis-server") is None:
            out.append("redis-server (apt install redis-server)")
        if not (PG_BIN / "postgres").exists():
            out.append(f"PostgreSQL 15 in {PG_BIN} (apt install postgresql-15)")
        if not self.ferretdb.exists():
            out.append(f"FerretDB at {self.ferretdb} (bash scripts/setup.d/30-ferretdb.sh)")
        if shutil.which("haproxy") is None:
            out.append("haproxy (apt install haproxy)")
        return out

    def start(self) -> Backing:
        for sub in ("redis", "ferretdb"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)  # the postgres user must reach its directory
        redis = redis_proc(self.root / "redis")
        pg = postgres_proc(self.root / "postgres")
        for proc in (redis, pg):
            proc.start(wait=False)
            self.procs.append(proc)
        for proc in self.procs:
            proc.wait_ready()
        pg_url = (
            f"postgres://postgres@127.0.0.1:{pg.port}/postgres"
            f"?pool_max_conns={FERRETDB_POOL_MAX_CONNS}"
        )
        self.ferretdb_debug_port = free_port()  # its request counters (the benchmark reads them)
        ferret = ferretdb_proc(
            self.root / "ferretdb",
            self.ferretdb,
            postgresql_url=pg_url,
            debug_port=self.ferretdb_debug_port,
        )
        self.procs.append(ferret)
        ferret.start()
        return Backing(
            redis_url=f"redis://127.0.0.1:{redis.port}/0",
            postgres_dsn=f"postgresql://postgres@127.0.0.1:{pg.port}/postgres",
            mongodb_uri=f"mongodb://127.0.0.1:{ferret.port}/",
        )

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
