"""``chatcluster operator``: parse flags and run the Kopf operator until signalled."""

from __future__ import annotations

import argparse
import logging

import kopf

from chat_operator.handlers import HandlerSettings, register
from chat_operator.kube import Kube
from chat_operator.metrics import Metrics
from chat_operator.reconcile import Reconciler


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="chatcluster operator", description=__doc__)
    p.add_argument(
        "--namespace",
        action="append",
        default=[],
        help="watch only this namespace (repeatable); default: all namespaces",
    )
    p.add_argument(
        "--resync-seconds",
        type=float,
        default=30.0,
        help="drift-repair and status interval per ChatCluster (default 30s)",
    )
    p.add_argument(
        "--liveness",
        default="http://0.0.0.0:8080/healthz",
        help="Kopf liveness endpoint URL; empty to disable",
    )
    p.add_argument("--metrics-port", type=int, default=9090, help="Prometheus port; 0 disables")
    p.add_argument("--verbose", action="store_true")
    return p


def run(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    if args.resync_seconds <= 0:
        raise SystemExit("--resync-seconds must be positive")
    metrics = Metrics()
    if args.metrics_port:
        metrics.serve(args.metrics_port)
    registry = kopf.OperatorRegistry()
    reconciler = Reconciler(Kube.from_environment(), metrics)
    register(registry, reconciler, HandlerSettings(resync_seconds=args.resync_seconds))
    # One active replica is guaranteed by the chart (replicas: 1, strategy Recreate), so no
    # peering objects (and no RBAC for them) are needed.
    kopf.run(
        registry=registry,
        standalone=True,
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        liveness_endpoint=args.liveness or None,
    )
    return 0
