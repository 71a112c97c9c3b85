"""`python -m tools.devcluster` (`make devcluster`): start the servers and the cluster, print
its URL, report (not restart) a process that dies, stop everything on SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import contextlib
import secrets
import signal
import sys
import tempfile
import threading
from pathlib import Path

from tools.devcluster.cluster import AppCluster
from tools.devcluster.servers import Services
from tools.harness.supervisor import ChildFailed
from tools.harness.versions import ferretdb_binary

PROG = "python -m tools.devcluster"
MAX_PROCESSES = 16


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="A whole cluster on this machine: redis-server, PostgreSQL 15, FerretDB, "
        "migrations, N WebSocket gateways, one API, M workers and haproxy in front, all on "
        "loopback. Open the printed URL. Ctrl-C stops everything.",
    )
    p.add_argument("--port", type=int, default=8000, help="haproxy's port (default 8000)")
    p.add_argument("--gateways", type=int, default=2, help="`ws` processes (default 2)")
    p.add_argument("--workers", type=int, default=2, help="`worker` processes (default 2)")
    p.add_argument(
        "--data-dir",
        type=Path,
        help="keep Redis/PostgreSQL/FerretDB data and logs here across runs "
        "(default: a temporary directory, deleted on exit)",
    )
    p.add_argument(
        "--ferretdb",
        type=Path,
        default=None,
        help=f"FerretDB binary (default {ferretdb_binary()})",
    )
    return p


def run(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if not (1 <= args.gateways <= MAX_PROCESSES and 1 <= args.workers <= MAX_PROCESSES):
        print(f"devcluster: --gateways and --workers must be 1..{MAX_PROCESSES}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with contextlib.ExitStack() as stack:
        if args.data_dir is None:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="devcluster-")))
            root.chmod(0o755)  # the postgres user must reach its data directory
        else:
            root = args.data_dir.resolve()
            root.mkdir(parents=True, exist_ok=True)
        services = Services(root / "servers", args.ferretdb or ferretdb_binary())
        missing = services.missing()
        if missing:
            print("devcluster: missing " + "; ".join(missing), file=sys.stderr)
            return 2
        secret_file = root / "jwt-secret"
        if not secret_file.exists():
            secret_file.write_text(secrets.token_urlsafe(48))
            secret_file.chmod(0o600)
        cluster: AppCluster | None = None
        try:
            backing = services.start()
            cluster = AppCluster(
                backing,
                root,
                gateways=args.gateways,
                workers=args.workers,
                port=args.port,
                jwt_secret=secret_file.read_text().strip(),
            )
            cluster.start()
            print(
                f"chatcluster devcluster running at {cluster.url}/ "
                f"({args.gateways} gateways, 1 api, {args.workers} workers; logs in {root})",
                flush=True,
            )
            return supervise(cluster, stop)
        except (ChildFailed, TimeoutError) as exc:
            print(f"devcluster: {exc}", file=sys.stderr)
            return 1
        finally:
            print("devcluster: stopping", file=sys.stderr, flush=True)
            if cluster is not None:
                cluster.stop()
            services.stop()


def supervise(cluster: AppCluster, stop: threading.Event) -> int:
    """Until asked to stop; a process that dies is reported (once), not restarted: haproxy
    keeps the others serving, as an ingress would."""
    reported: set[str] = set()
    while not stop.wait(1.0):
        for p in cluster.processes():
            if not p.running and p.name not in reported:
                reported.add(p.name)
                code = None if p.popen is None else p.popen.returncode
                print(f"devcluster: {p.name} exited ({code}); log {p.log_path}", file=sys.stderr)
    return 0
