"""HorizontalPodAutoscalers (autoscaling/v2) and PodDisruptionBudgets (policy/v1)."""

from __future__ import annotations

from typing import Any

from chat_operator.builders.common import Cluster, Manifest, metadata, selector_labels
from chat_operator.spec import Component


def hpa(
    cluster: Cluster,
    deployment: str,
    component_label: str,
    component: Component,
    pool: str | None = None,
) -> Manifest | None:
    scaling = component.autoscaling
    if scaling is None:
        return None
    metrics: list[dict[str, Any]] = []
    for resource, target in (("cpu", scaling.target_cpu), ("memory", scaling.target_memory)):
        if target is not None:
            metrics.append(
                {
                    "type": "Resource",
                    "resource": {
                        "name": resource,
                        "target": {"type": "Utilization", "averageUtilization": target},
                    },
                }
            )
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(cluster, deployment, component_label, pool),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment},
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": metrics,
            "behavior": {
                "scaleDown": {
                    "stabilizationWindowSeconds": scaling.scale_down_stabilization_seconds
                }
            },
        },
    }


def pdb(
    cluster: Cluster,
    deployment: str,
    component_label: str,
    component: Component,
    pool: str | None = None,
) -> Manifest | None:
    """A PDB that by default lets one pod at a time be evicted."""
    budget = component.pdb
    if not budget.enabled:
        return None
    spec: dict[str, Any] = {
        "selector": {"matchLabels": selector_labels(cluster, component_label, pool)},
        # Let nodes drain even while pods are not ready (e.g. a crash-looping release).
        "unhealthyPodEvictionPolicy": "AlwaysAllow",
    }
    if budget.min_available is not None:
        spec["minAvailable"] = budget.min_available
    else:
        spec["maxUnavailable"] = budget.max_unavailable if budget.max_unavailable is not None else 1
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(cluster, deployment, component_label, pool),
        "spec": spec,
    }
