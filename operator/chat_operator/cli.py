"""``chatcluster operator``: parse flags and run the Kopf operator until signalled."""

from __future__ import annotations

import argparse
import os
import socket

import kopf

from chat_operator import logs
from chat_operator.events import Recorder
from chat_operator.handlers import HandlerSettings, Key, register
from chat_operator.kube import Kube
from chat_operator.leader import LeaderElector
from chat_operator.metrics import Metrics
from chat_operator.reconcile import Reconciler
from chat_operator.settings import OperatorSettings, SettingsError
from chat_operator.workqueue import WorkQueue


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
        help="every ChatCluster is reconciled at least this often (default 30s); child "
        "events trigger a pass within a second",
    )
    p.add_argument("--workers", type=int, default=2, help="concurrent reconciles (default 2)")
    p.add_argument(
        "--liveness",
        default="http://0.0.0.0:8080/healthz",
        help="Kopf liveness endpoint URL; empty to disable",
    )
    p.add_argument("--metrics-port", type=int, default=9090, help="Prometheus port; 0 disables")
    p.add_argument(
        "--leader-election-namespace",
        default=os.environ.get("POD_NAMESPACE", ""),
        help="namespace of the leader-election Lease (default $POD_NAMESPACE); empty: no "
        "leader election (run exactly one replica)",
    )
    p.add_argument("--lease-name", default="chatcluster-operator")
    p.add_argument("--lease-seconds", type=float, default=15.0)
    p.add_argument(
        "--identity",
        default=os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}",
        help="this replica's name in the Lease (default $POD_NAME)",
    )
    p.add_argument("--log-format", choices=["text", "json"], default="text")
    p.add_argument("--verbose", action="store_true")
    return p


def run(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if args.resync_seconds <= 0:
        raise SystemExit("--resync-seconds must be positive")
    try:
        settings = OperatorSettings.from_environ(os.environ)
    except SettingsError as exc:
        raise SystemExit(f"chatcluster operator: {exc}") from None
    logs.configure(args.log_format, args.verbose)
    metrics = Metrics()
    if args.metrics_port:
        metrics.serve(args.metrics_port)
    kube = Kube.from_environment(
        count=lambda verb, resource: metrics.requests.labels(verb, resource).inc()
    )
    reconciler = Reconciler(kube, metrics, Recorder(kube), settings)

    def keys() -> list[Key]:
        found = (
            [c for ns in args.namespace for c in kube.list_clusters(ns)]
            if args.namespace
            else kube.list_clusters()
        )
        return [(c["metadata"]["namespace"], c["metadata"]["name"]) for c in found]

    elector: LeaderElector | None = None

    def process(key: Key) -> None:
        if elector is not None and not elector.is_leader():
            return  # a standby replica watches but never writes
        reconciler.reconcile(*key)

    queue: WorkQueue[Key] = WorkQueue(
        process, keys=keys, resync_seconds=args.resync_seconds, workers=args.workers
    )
    if args.leader_election_namespace:
        elector = LeaderElector(
            kube,
            args.leader_election_namespace,
            args.lease_name,
            args.identity,
            args.lease_seconds,
            on_started_leading=queue.resync_now,
        )
        elector.start()
    registry = kopf.OperatorRegistry()
    register(
        registry, queue, reconciler.forget, HandlerSettings(resync_seconds=args.resync_seconds)
    )
    try:
        # standalone: no Kopf peering objects; the Lease above decides who writes.
        kopf.run(
            registry=registry,
            standalone=True,
            clusterwide=not args.namespace,
            namespaces=args.namespace,
            liveness_endpoint=args.liveness or None,
        )
    finally:
        if elector is not None:
            elector.stop()
    return 0
