"""The `chatcluster` command: every component is a subcommand of one CLI (and one image)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from chat import __version__
from chat.config import Backend, ConfigError, Settings, load


def _common(p: argparse.ArgumentParser, port: int | None) -> None:
    p.add_argument("--host", help="interface to listen on (env CHAT_HOST)")
    p.add_argument(
        "--port", type=int, default=None, help=f"port to listen on (env CHAT_PORT; default {port})"
    )
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chatcluster",
        description="Self-hosted real-time chat. `dev` runs everything in one process with no "
        "servers; `api`, `ws` and `worker` are the parts of a cluster (configured by "
        "REDIS_URL, POSTGRES_DSN, MONGODB_URI and CHAT_* variables).",
    )
    parser.add_argument("--version", action="version", version=f"chatcluster {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dev = sub.add_parser(
        "dev",
        help="everything in one process on embedded SQLite storage",
        description="API, WebSocket gateway, worker and web client in one "
        "process; data in --data-dir. Open the printed URL in a browser.",
    )
    _common(dev, 8000)
    dev.add_argument("--data-dir", type=Path, help="where SQLite files live (default .chatdata)")
    dev.add_argument(
        "--admin",
        action="append",
        default=[],
        metavar="USERNAME",
        help="username that becomes an admin when registered (repeatable)",
    )

    api = sub.add_parser(
        "api",
        help="the HTTP API (and web client)",
        description="Accounts, conversations, history, health, metrics.",
    )
    _common(api, 8080)
    ws = sub.add_parser(
        "ws",
        help="the WebSocket gateway",
        description="Live delivery at /ws; drains with close code 1012 on SIGTERM.",
    )
    _common(ws, 8081)

    worker = sub.add_parser(
        "worker",
        help="Dramatiq worker pool",
        description="Archives conversation logs, sweeps, retention.",
    )
    worker.add_argument("--processes", type=int, default=1, help="worker processes")
    worker.add_argument("--threads", type=int, default=4, help="threads per process")
    worker.add_argument(
        "--queues", nargs="*", default=None, help="queues to consume (default: all)"
    )
    worker.add_argument(
        "--metrics-port", type=int, default=9191, help="Prometheus metrics port (0 disables)"
    )
    worker.add_argument("--log-level", default="INFO")

    migrate = sub.add_parser("migrate", help="apply database migrations (idempotent)")
    migrate.add_argument("--log-level", default="INFO")

    sub.add_parser("operator", help="the Kubernetes operator (Kopf)", add_help=False)
    sub.add_parser(
        "devcluster",
        help="a whole cluster on this machine: Redis, PostgreSQL 15, FerretDB, migrations, "
        "N gateways, one API, M workers and haproxy, on loopback",
        add_help=False,
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["devcluster"]:
        from chat.devcluster import run as run_devcluster

        return run_devcluster(argv[1:])
    if argv[:1] == ["operator"]:
        from chat_operator.cli import run

        return int(run(argv[1:]))
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return _run(args)
    except ConfigError as exc:
        print(f"chatcluster: configuration error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from chat.server import serve

    if args.command == "dev":
        settings = load(
            backend=Backend.EMBEDDED,
            data_dir=args.data_dir,
            host=args.host,
            port=args.port,
            admins=frozenset(a.lower() for a in args.admin) or None,
        )
        url = f"http://{settings.host}:{settings.port}/"
        asyncio.run(
            serve(
                settings,
                api=True,
                gateway=True,
                web=True,
                worker=True,
                banner=f"chatcluster {__version__} running at {url}",
            )
        )
        return 0
    if args.command in ("api", "ws"):
        default_port = 8080 if args.command == "api" else 8081
        settings = _cluster_settings(host=args.host, port=args.port or default_port)
        asyncio.run(
            serve(
                settings,
                api=args.command == "api",
                gateway=args.command == "ws",
                web=args.command == "api",
                worker=False,
                banner=f"chatcluster {args.command} on :{settings.port}",
            )
        )
        return 0
    if args.command == "worker":
        from chat.worker.main import run_workers

        return run_workers(
            _cluster_settings(),
            processes=args.processes,
            threads=args.threads,
            queues=args.queues,
            metrics_port=args.metrics_port,
        )
    if args.command == "migrate":
        settings = _cluster_settings()
        from chat.stores.cluster import migrate

        applied = asyncio.run(migrate(settings))
        print(f"migrations applied: {', '.join(applied) or 'none (up to date)'}")
        return 0
    raise AssertionError(args.command)


def _cluster_settings(**overrides: object) -> Settings:
    import os

    backend = Backend(os.environ.get("CHAT_BACKEND", Backend.CLUSTER.value))
    return load(backend=backend, **overrides)
