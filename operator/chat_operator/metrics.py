"""Operator metrics in Prometheus format, on an explicit registry (no process globals)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.reconciles = Counter(
            "chatcluster_operator_reconciles",
            "Reconcile passes by outcome.",
            ["result"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "chatcluster_operator_reconcile_seconds",
            "Wall time of one reconcile pass.",
            registry=self.registry,
        )
        self.changes = Counter(
            "chatcluster_operator_child_changes",
            "Children created, updated (spec change or drift repair) or pruned.",
            ["kind", "action"],
            registry=self.registry,
        )
        self.requests = Counter(
            "chatcluster_operator_api_requests",
            "API requests made by the reconciler (not Kopf's watch streams).",
            ["verb", "resource"],
            registry=self.registry,
        )
        self.ready = Gauge(
            "chatcluster_operator_cluster_ready",
            "1 when the ChatCluster's Ready condition is True.",
            ["namespace", "name"],
            registry=self.registry,
        )

    def serve(self, port: int, addr: str = "0.0.0.0") -> None:  # noqa: S104 - scraped in-cluster
        start_http_server(port, addr=addr, registry=self.registry)
