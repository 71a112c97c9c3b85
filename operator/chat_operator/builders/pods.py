"""The pod template every chatcluster container shares: environment wiring, hardening and
scheduling. Components differ only in arguments, ports and probes."""

from __future__ import annotations

from typing import Any

from chat.config import env_name
from chat_operator.builders.common import (
    CHECKSUM_ANNOTATION,
    Cluster,
    config_name,
    labels,
    selector_labels,
)
from chat_operator.spec import Component, Dependency

# The image runs as this unprivileged user; the root filesystem is read-only, so /tmp is an
# emptyDir.
RUN_AS = 10001

DEFAULT_RESOURCES: dict[str, Any] = {
    "requests": {"cpu": "100m", "memory": "128Mi"},
    "limits": {"memory": "512Mi"},
}


def _dependency_env(name: str, dep: Dependency) -> dict[str, Any]:
    if dep.secret is not None:
        ref = {"name": dep.secret.name, "key": dep.secret.key}
        return {"name": name, "valueFrom": {"secretKeyRef": ref}}
    return {"name": name, "value": dep.url or ""}


def env(cluster: Cluster) -> list[dict[str, Any]]:
    """The configuration contract of the image: REDIS_URL, POSTGRES_DSN, MONGODB_URI and
    CHAT_JWT_SECRET (names from chat/config.py); credentials only ever come from Secrets."""
    spec = cluster.spec
    items = [
        _dependency_env(env_name("redis_url"), spec.redis),
        _dependency_env(env_name("postgres_dsn"), spec.postgres),
    ]
    if spec.mongodb is not None:
        items.append(_dependency_env(env_name("mongodb_uri"), spec.mongodb))
    jwt = {"name": spec.jwt_secret.name, "key": spec.jwt_secret.key}
    items.append({"name": env_name("jwt_secret"), "valueFrom": {"secretKeyRef": jwt}})
    pod_name = {"fieldRef": {"fieldPath": "metadata.name"}}
    items.append({"name": env_name("pod_name"), "valueFrom": pod_name})
    return items


def container_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def container(
    cluster: Cluster, name: str, image: str, args: list[str], component: Component
) -> dict[str, Any]:
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": cluster.spec.pull_policy,
        # No `command`: the image's entrypoint (tini, then `chatcluster`) stays PID 1, so
        # signals are forwarded and zombies reaped; `args` picks the subcommand.
        "args": args,
        "env": env(cluster),
        "envFrom": [{"configMapRef": {"name": config_name(cluster)}}],
        "resources": dict(component.resources) or DEFAULT_RESOURCES,
        "securityContext": container_security(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108 - an emptyDir
    }


def pod_spec(
    cluster: Cluster,
    containers: list[dict[str, Any]],
    component: Component | None,
    component_label: str,
    pool: str | None = None,
    restart_policy: str = "Always",
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": containers,
        "restartPolicy": restart_policy,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "fsGroup": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
    }
    if cluster.spec.pull_secrets:
        spec["imagePullSecrets"] = [{"name": n} for n in cluster.spec.pull_secrets]
    if component is None:
        return spec
    if component.node_selector:
        spec["nodeSelector"] = dict(component.node_selector)
    if component.tolerations:
        spec["tolerations"] = [dict(t) for t in component.tolerations]
    if component.affinity:
        spec["affinity"] = dict(component.affinity)
    if component.priority_class_name:
        spec["priorityClassName"] = component.priority_class_name
    if component.topology_spread:
        selector = {"matchLabels": selector_labels(cluster, component_label, pool)}
        spec["topologySpreadConstraints"] = [
            {**dict(c), "labelSelector": selector} for c in component.topology_spread
        ]
    return spec


def template(
    cluster: Cluster,
    component_label: str,
    pod: dict[str, Any],
    template_checksum: str,
    component: Component | None = None,
    pool: str | None = None,
) -> dict[str, Any]:
    """Pod template whose checksum annotation changes when config or Secret values change, so
    the Deployment rolls its pods."""
    annotations = dict(component.pod_annotations) if component else {}
    annotations[CHECKSUM_ANNOTATION] = template_checksum
    return {
        "metadata": {"labels": labels(cluster, component_label, pool), "annotations": annotations},
        "spec": pod,
    }
