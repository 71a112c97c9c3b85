"""The `chatcluster` command: every component is a subcommand of one CLI (and one image)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from chat import __version__
from chat.config import ENV, LOG_LEVELS, Backend, ConfigError, Settings, load
from chat.logs import configure as configure_logging
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
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["operator"]:
        from chat_operator.cli import run

        return int(run(argv[1:]))
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except ConfigError as exc:
        print(f"chatcluster: configuration error: {exc}", file=sys.stderr)
        return 2


DEFAULT_PORTS = {"dev": 8000, "api": 8080, "ws": 8081}


def settings_for(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> Settings:
    """The settings a subcommand runs with: the environment (`env`, default os.environ) with
    the command line on top. Pure, so a test can check what a pod's env and args add up to."""
    env = os.environ if env is None else env
    flags: dict[str, object] = {"log_level": args.log_level}
    if args.command == "dev":
        metrics_port = args.metrics_port
        if metrics_port is None and not env.get(ENV["metrics_port"]):
            metrics_port = 0  # trying it out binds one port: no metrics listener unless asked
        admins = frozenset(a.lower() for a in args.admin) or None
        return load(
            env,
            backend=Backend.EMBEDDED,
            data_dir=args.data_dir,
            host=args.host,
            port=args.port,
            metrics_port=metrics_port,
            admins=admins,
            **flags,
        )
    if args.command in ("api", "ws"):
        port = args.port or DEFAULT_PORTS[args.command]
        flags.update(host=args.host, port=port, metrics_port=args.metrics_port)
    elif args.command == "worker":
        flags.update(metrics_port=args.metrics_port)
    # Cluster mode unless CHAT_BACKEND says otherwise (the image's tests run parts embedded).
    backend = None if env.get(ENV["backend"]) else Backend.CLUSTER
    return load(env, backend=backend, **flags)


def _run(args: argparse.Namespace) -> int:
    from chat.server import run, serve

    settings = settings_for(args)
    configure_logging(settings.log_level, settings.log_format)
    if args.command == "dev":
        url = f"http://{settings.host}:{settings.port}/"
        run(
            serve(
                settings,
                api=True,
                gateway=True,
                web=True,
                worker=True,
                banner=f"chatcluster {__version__} running at {url}",
            ),
            settings.event_loop,
        )
        return 0
    if args.command in ("api", "ws"):
        run(
            serve(
                settings,
                api=args.command == "api",
                gateway=args.command == "ws",
                web=args.command == "api",
                worker=False,
                banner=f"chatcluster {args.command} on :{settings.port}"
                + (f", metrics on :{settings.metrics_port}" if settings.metrics_port else "")
                + (f" (pod {settings.pod_name})" if settings.pod_name else ""),
            ),
            settings.event_loop,
        )
        return 0
    if args.command == "worker":
        from chat.app.workers import run_workers

        return run_workers(
            settings, processes=args.processes, threads=args.threads, queues=args.queues
        )
    if args.command == "migrate":
        from chat.stores.cluster import migrate

        applied = asyncio.run(migrate(settings))
        print(f"migrations applied: {', '.join(applied) or 'none (up to date)'}")
        return 0
    raise AssertionError(args.command)
