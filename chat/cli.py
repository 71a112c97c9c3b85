"""The `chatcluster` command: every component is a subcommand of one CLI (and one image)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from chat import __version__
from chat.config import ENV, LOG_LEVELS, Backend, ConfigError, Settings, load
from chat.worker import QUEUES


def _log_level(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--log-level",
        default=None,
        help=f"{', '.join(LOG_LEVELS)} (env {ENV['log_level']}; default INFO)",
    )


def _metrics_port(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help=f"internal Prometheus listener serving /metrics (env {ENV['metrics_port']}; "
        f"default {default}; 0 disables)",
    )


def _common(p: argparse.ArgumentParser, port: int | None) -> None:
    p.add_argument("--host", help=f"interface to listen on (env {ENV['host']})")
    p.add_argument(
        "--port",
        type=int,
        default=None,
        help=f"port to listen on (env {ENV['port']}; default {port})",
    )
    _log_level(p)


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
    _metrics_port(dev, "none")
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
        description="Accounts, conversations, history, health; Prometheus metrics on the "
        "separate --metrics-port.",
    )
    _common(api, 8080)
    _metrics_port(api, "9191")
    ws = sub.add_parser(
        "ws",
        help="the WebSocket gateway",
        description="Live delivery at /ws; drains with close code 1012 on SIGTERM.",
    )
    _common(ws, 8081)
    _metrics_port(ws, "9191")

    worker = sub.add_parser(
        "worker",
        help="Dramatiq worker pool",
        description="Archives conversation logs, sweeps, retention.",
    )
    worker.add_argument("--processes", type=int, default=1, help="worker processes")
    worker.add_argument("--threads", type=int, default=4, help="threads per process")
    worker.add_argument(
        "--queues",
        nargs="*",
        default=None,
        choices=QUEUES,
        metavar="QUEUE",
        help=f"queues to consume, space-separated: {', '.join(QUEUES)} (default: all)",
    )
    _metrics_port(worker, "9191; one port for all --processes")
    _log_level(worker)

    migrate = sub.add_parser("migrate", help="apply database migrations (idempotent)")
    _log_level(migrate)

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
    try:
        return _run(args)
    except ConfigError as exc:
        print(f"chatcluster: configuration error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from chat.server import serve

    if args.command == "dev":
        # Trying it out binds one port: no metrics listener unless asked for.
        metrics_port = args.metrics_port
        if metrics_port is None and not os.environ.get(ENV["metrics_port"]):
            metrics_port = 0
        settings = _configured(
            load(
                backend=Backend.EMBEDDED,
                data_dir=args.data_dir,
                host=args.host,
                port=args.port,
                metrics_port=metrics_port,
                log_level=args.log_level,
                admins=frozenset(a.lower() for a in args.admin) or None,
            )
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
        settings = _cluster_settings(
            args,
            host=args.host,
            port=args.port or default_port,
            metrics_port=args.metrics_port,
        )
        asyncio.run(
            serve(
                settings,
                api=args.command == "api",
                gateway=args.command == "ws",
                web=args.command == "api",
                worker=False,
                banner=f"chatcluster {args.command} on :{settings.port}"
                + (f", metrics on :{settings.metrics_port}" if settings.metrics_port else "")
                + (f" (pod {settings.pod_name})" if settings.pod_name else ""),
            )
        )
        return 0
    if args.command == "worker":
        from chat.worker.main import run_workers

        return run_workers(
            _cluster_settings(args, metrics_port=args.metrics_port),
            processes=args.processes,
            threads=args.threads,
            queues=args.queues,
        )
    if args.command == "migrate":
        settings = _cluster_settings(args)
        from chat.stores.cluster import migrate

        applied = asyncio.run(migrate(settings))
        print(f"migrations applied: {', '.join(applied) or 'none (up to date)'}")
        return 0
    raise AssertionError(args.command)


def _cluster_settings(args: argparse.Namespace, **overrides: object) -> Settings:
    """Cluster mode unless CHAT_BACKEND says otherwise (the image's tests run parts embedded)."""
    backend = None if os.environ.get(ENV["backend"]) else Backend.CLUSTER
    return _configured(load(backend=backend, log_level=args.log_level, **overrides))


def _configured(settings: Settings) -> Settings:
    """Logging at the settings' level (`--log-level`, else CHAT_LOG_LEVEL, else INFO)."""
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return settings
