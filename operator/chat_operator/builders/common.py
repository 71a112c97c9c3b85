"""Names, labels and metadata shared by every child, so selectors and owner references are
built in exactly one place."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from chat_operator import GROUP, KIND, VERSION
from chat_operator.builders.alerts import DEFAULT_RUNBOOK_BASE_URL
from chat_operator.spec import ChatClusterSpec

Manifest = dict[str, Any]

MANAGED_BY = "chatcluster-operator"
INSTANCE_LABEL = "app.kubernetes.io/instance"
COMPONENT_LABEL = "app.kubernetes.io/component"
POOL_LABEL = f"{GROUP}/worker-pool"
CHECKSUM_ANNOTATION = f"{GROUP}/checksum"

API_PORT = 8080
WS_PORT = 8081
METRICS_PORT = 9191
"""Every chatcluster pod's internal Prometheus listener (container port `metrics`); the
Ingress never routes it."""
METRICS_PORT_NAME = "metrics"


@dataclass(frozen=True)
class Cluster:
    """The identity of one ChatCluster plus its parsed spec: the only input of the builders
    apart from :class:`Rollout`."""

    name: str
    namespace: str
    uid: str
    spec: ChatClusterSpec


@dataclass(frozen=True)
class Rollout:
    """Facts the reconciler observed that the spec alone cannot tell.

    ``image`` is what the Deployments may run: the spec's image once its migration succeeded,
    the previously rolled image while it runs, or None before any migration succeeded (then no
    workload is built). ``secrets_checksum`` hashes the referenced Secret values so a rotation
    changes the pod template and rolls the pods.
    """

    image: str | None
    secrets_checksum: str
    service_monitor_available: bool
    prometheus_rule_available: bool = False
    """The PrometheusRule CRD is served (set by the reconciler from discovery, like the
    ServiceMonitor's); False leaves the cluster's alerts out."""
    runbook_base_url: str = DEFAULT_RUNBOOK_BASE_URL
    """Where the alerts' `runbook_url`s point: an operator setting (chat_operator/settings.py,
    the chart's `runbookBaseUrl`), not a spec field, the same for every cluster."""


def short_hash(value: str, length: int = 8) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:length]


def checksum(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def selector_labels(cluster: Cluster, component: str, pool: str | None = None) -> dict[str, str]:
    """Labels that select a component's pods; they must never change after creation because
    Deployment selectors are immutable."""
    labels = {
        "app.kubernetes.io/name": "chatcluster",
        INSTANCE_LABEL: cluster.name,
        COMPONENT_LABEL: component,
    }
    if pool is not None:
        labels[POOL_LABEL] = pool
    return labels


def labels(cluster: Cluster, component: str, pool: str | None = None) -> dict[str, str]:
    return {
        **selector_labels(cluster, component, pool),
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "app.kubernetes.io/part-of": "chatcluster",
    }


def owner_reference(cluster: Cluster) -> dict[str, Any]:
    """Controller owner reference: deleting the ChatCluster garbage-collects the child."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "name": cluster.name,
        "uid": cluster.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def metadata(
    cluster: Cluster,
    name: str,
    component: str,
    pool: str | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": cluster.namespace,
        "labels": labels(cluster, component, pool),
        "ownerReferences": [owner_reference(cluster)],
    }
    if annotations:
        meta["annotations"] = annotations
    return meta


def api_name(cluster: Cluster) -> str:
    return f"{cluster.name}-api"


def ws_name(cluster: Cluster) -> str:
    return f"{cluster.name}-ws"


def worker_name(cluster: Cluster, pool: str) -> str:
    return f"{cluster.name}-worker-{pool}"


def config_name(cluster: Cluster) -> str:
    return f"{cluster.name}-config"


def migration_job_name(cluster: Cluster, image: str) -> str:
    """One Job per image, so a version change runs a fresh migration."""
    return f"{cluster.name}-migrate-{short_hash(image)}"
