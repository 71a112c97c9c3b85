"""ServiceMonitor and PrometheusRule (only when the Prometheus Operator's CRDs exist) and the
Grafana dashboard."""

from __future__ import annotations

import json

from chat_operator.builders import alerts, dashboards
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
    spec = cluster.spec.monitoring.service_monitor
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
    """The chat overview (builders/dashboards.py), preset to this cluster, in a ConfigMap the
    Grafana sidecar picks up by its ``grafana_dashboard`` label."""
    board = dashboards.overview(default_cluster=cluster.name, uid=f"chat-{cluster.name}")
    board["title"] = f"chatcluster {cluster.namespace}/{cluster.name}"
    namespace = next(v for v in board["templating"]["list"] if v["name"] == "namespace")
    namespace["current"] = {"text": cluster.namespace, "value": cluster.namespace}
    meta = metadata(cluster, f"{cluster.name}-dashboard", "monitoring")
    meta["labels"]["grafana_dashboard"] = "1"
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta,
        "data": {f"chatcluster-{cluster.name}.json": json.dumps(board, sort_keys=True)},
    }


def prometheus_rule(
    cluster: Cluster, runbook_base_url: str = alerts.DEFAULT_RUNBOOK_BASE_URL
) -> Manifest:
    """The cluster's alerts (builders/alerts.py); applied with the ServiceMonitor, since both
    CRDs come with the Prometheus Operator. Their runbook links start with the operator's
    configured base (chat_operator/settings.py)."""
    meta = metadata(cluster, cluster.name, "monitoring")
    meta["labels"].update(cluster.spec.monitoring.service_monitor.labels)
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": meta,
        "spec": {
            "groups": alerts.cluster_groups(cluster.namespace, cluster.name, runbook_base_url)
        },
    }
