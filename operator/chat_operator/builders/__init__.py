"""Pure builders: ChatCluster spec (+ observed rollout facts) -> child manifests.

Nothing here talks to the API server, so every manifest can be unit-tested and validated
against the Kubernetes OpenAPI schemas.
"""

from __future__ import annotations

from chat_operator.builders import config, migration, monitoring, network, scaling, workloads
from chat_operator.builders.common import (
    Cluster,
    Manifest,
    Rollout,
    api_name,
    checksum,
    worker_name,
    ws_name,
)

__all__ = ["Cluster", "Manifest", "Rollout", "children", "migration_job", "template_checksum"]


def template_checksum(cluster: Cluster, rollout: Rollout) -> str:
    """Changes whenever the config or a referenced Secret value changes."""
    return checksum(config.config_data(cluster), rollout.secrets_checksum)


def migration_job(cluster: Cluster, image: str, rollout: Rollout) -> Manifest:
    return migration.migration_job(cluster, image, template_checksum(cluster, rollout))


def children(cluster: Cluster, rollout: Rollout) -> list[Manifest]:
    """Every child the cluster should have right now (the migration Job excepted, which the
    reconciler manages because it depends on observed Job state)."""
    spec = cluster.spec
    out: list[Manifest] = [
        config.config_map(cluster),
        workloads.api_service(cluster),
        workloads.ws_service(cluster),
    ]
    if spec.workers:
        out.append(workloads.workers_service(cluster))
    if ing := network.ingress(cluster):
        out.append(ing)
    if spec.monitoring.service_monitor.enabled and rollout.service_monitor_available:
        out.append(monitoring.service_monitor(cluster))
    if spec.monitoring.service_monitor.enabled and rollout.prometheus_rule_available:
        out.append(monitoring.prometheus_rule(cluster, rollout.runbook_base_url))
    if spec.monitoring.dashboards.enabled:
        out.append(monitoring.dashboard(cluster))
    if rollout.image is None:
        return out
    sums = template_checksum(cluster, rollout)
    scaled = [
        (
            workloads.api_deployment(cluster, rollout.image, sums),
            api_name(cluster),
            "api",
            spec.api,
            None,
        ),
        (
            workloads.ws_deployment(cluster, rollout.image, sums),
            ws_name(cluster),
            "websocket",
            spec.websocket,
            None,
        ),
    ] + [
        (
            workloads.worker_deployment(cluster, pool, rollout.image, sums),
            worker_name(cluster, pool.name),
            "worker",
            pool.component,
            pool.name,
        )
        for pool in spec.workers
    ]
    for deployment, name, label, component, pool in scaled:
        out.append(deployment)
        for extra in (
            scaling.hpa(cluster, name, label, component, pool),
            scaling.pdb(cluster, name, label, component, pool),
        ):
            if extra is not None:
                out.append(extra)
    return out
