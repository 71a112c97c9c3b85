"""ServiceMonitor (only when the Prometheus Operator's CRD exists) and Grafana dashboards."""

from __future__ import annotations

import json

from chat_operator.builders import alerts
from chat_operator.builders.common import (
    INSTANCE_LABEL,
    METRICS_PORT_NAME,
    Cluster,
    Manifest,
    metadata,
)


def service_monitor(cluster: Cluster) -> Manifest:
    """Scrapes the `metrics` port of the api, ws and workers Services: /metrics is served
    there only, never on the public ports the Ingress routes."""
    spec = cluster.spec.monitoring
    meta = metadata(cluster, cluster.name, "monitoring")
    meta["labels"].update(spec.labels)
    endpoint_ports = (METRICS_PORT_NAME,)
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": meta,
        "spec": {
            "selector": {
                "matchLabels": {INSTANCE_LABEL: cluster.name, "chatcluster.dev/metrics": "true"}
            },
            "endpoints": [
                {"port": port, "path": "/metrics", "interval": spec.interval}
                for port in endpoint_ports
            ],
        },
    }


def dashboard(cluster: Cluster) -> Manifest:
    """A ConfigMap the Grafana sidecar picks up by its ``grafana_dashboard`` label."""
    panels = [
        {
            "type": "timeseries",
            "title": title,
            "gridPos": {"x": 0, "y": index * 8, "w": 24, "h": 8},
            "targets": [{"expr": expr.replace("$instance", cluster.name)}],
        }
        for index, (title, expr) in enumerate(
            (
                (
                    "Ready replicas",
                    'kube_deployment_status_replicas_ready{deployment=~"$instance-.*"}',
                ),
                ("Process CPU", 'rate(process_cpu_seconds_total{service=~"$instance-.*"}[5m])'),
            )
        )
    ]
    board = {
        "title": f"chatcluster {cluster.name}",
        "uid": f"chat-{cluster.name}",
        "schemaVersion": 39,
        "panels": panels,
    }
    meta = metadata(cluster, f"{cluster.name}-dashboard", "monitoring")
    meta["labels"]["grafana_dashboard"] = "1"
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta,
        "data": {f"chatcluster-{cluster.name}.json": json.dumps(board, sort_keys=True)},
    }


def prometheus_rule(cluster: Cluster) -> Manifest:
    """The cluster's alerts (builders/alerts.py); applied with the ServiceMonitor, since both
    CRDs come with the Prometheus Operator."""
    meta = metadata(cluster, cluster.name, "monitoring")
    meta["labels"].update(cluster.spec.monitoring.labels)
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": meta,
        "spec": {"groups": alerts.cluster_groups(cluster.namespace, cluster.name)},
    }
