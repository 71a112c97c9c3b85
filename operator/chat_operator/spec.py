"""A typed view of ``ChatCluster.spec``.

The API server already validated the spec against the CRD schema (bounds, enums, CEL), so
parsing here only fills the defaults that the schema cannot express (per-component replica
defaults) and turns dicts into frozen dataclasses the builders can rely on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_REPOSITORY = "ghcr.io/chatcluster/chatcluster"


@dataclass(frozen=True)
class Autoscaling:
    min_replicas: int
    max_replicas: int
    target_cpu: int | None
    target_memory: int | None
    scale_down_stabilization_seconds: int


@dataclass(frozen=True)
class Disruption:
    enabled: bool
    min_available: int | str | None
    max_unavailable: int | str | None


@dataclass(frozen=True)
class Component:
    """Scheduling and scaling settings shared by api, websocket and worker pools."""

    replicas: int
    autoscaling: Autoscaling | None
    resources: Mapping[str, Any]
    node_selector: Mapping[str, str]
    tolerations: tuple[Mapping[str, Any], ...]
    affinity: Mapping[str, Any] | None
    topology_spread: tuple[Mapping[str, Any], ...]
    priority_class_name: str | None
    pod_annotations: Mapping[str, str]
    pdb: Disruption


@dataclass(frozen=True)
class WorkerPool:
    name: str
    queues: tuple[str, ...]
    processes: int
    threads: int
    component: Component


@dataclass(frozen=True)
class SecretKey:
    name: str
    key: str


@dataclass(frozen=True)
class Dependency:
    """A backing service reached either by a credential-free URL or a Secret key."""

    url: str | None
    secret: SecretKey | None


@dataclass(frozen=True)
class Ingress:
    enabled: bool
    class_name: str | None
    host: str | None
    tls_secret: str | None
    websocket_path: str
    annotations: Mapping[str, str]


@dataclass(frozen=True)
class Migrations:
    enabled: bool
    backoff_limit: int
    active_deadline_seconds: int


@dataclass(frozen=True)
class Monitoring:
    service_monitor: bool
    interval: str
    labels: Mapping[str, str]
    dashboards: bool


@dataclass(frozen=True)
class ChatClusterSpec:
    version: str
    image: str
    pull_policy: str
    pull_secrets: tuple[str, ...]
    api: Component
    websocket: Component
    drain_seconds: int
    workers: tuple[WorkerPool, ...]
    ingress: Ingress
    public_url: str | None
    """`spec.publicURL`: the origin browsers use, when the Ingress host does not say it."""
    redis: Dependency
    redis_key_prefix: str
    postgres: Dependency
    mongodb: Dependency | None
    jwt_secret: SecretKey
    access_token_ttl_seconds: int
    migrations: Migrations
    monitoring: Monitoring
    config: Mapping[str, str]
    paused: bool
    secret_refs: tuple[SecretKey, ...] = field(default=())


def _component(raw: Mapping[str, Any] | None, default_replicas: int) -> Component:
    raw = raw or {}
    scaling = raw.get("autoscaling")
    pdb = raw.get("podDisruptionBudget") or {}
    return Component(
        replicas=int(raw.get("replicas", default_replicas)),
        autoscaling=Autoscaling(
            min_replicas=int(scaling["minReplicas"]),
            max_replicas=int(scaling["maxReplicas"]),
            target_cpu=scaling.get("targetCPUUtilizationPercentage"),
            target_memory=scaling.get("targetMemoryUtilizationPercentage"),
            scale_down_stabilization_seconds=int(scaling.get("scaleDownStabilizationSeconds", 300)),
        )
        if scaling
        else None,
        resources=dict(raw.get("resources") or {}),
        node_selector=dict(raw.get("nodeSelector") or {}),
        tolerations=tuple(raw.get("tolerations") or ()),
        affinity=raw.get("affinity"),
        topology_spread=tuple(raw.get("topologySpreadConstraints") or ()),
        priority_class_name=raw.get("priorityClassName"),
        pod_annotations=dict(raw.get("podAnnotations") or {}),
        pdb=Disruption(
            enabled=bool(pdb.get("enabled", True)),
            min_available=pdb.get("minAvailable"),
            max_unavailable=pdb.get("maxUnavailable"),
        ),
    )


def _secret_key(raw: Mapping[str, Any] | None, default_key: str) -> SecretKey | None:
    if not raw:
        return None
    return SecretKey(name=str(raw["name"]), key=str(raw.get("key", default_key)))


def _dependency(raw: Mapping[str, Any], default_key: str) -> Dependency:
    return Dependency(url=raw.get("url"), secret=_secret_key(raw.get("secretRef"), default_key))


def image_reference(raw: Mapping[str, Any], version: str) -> str:
    """``repository:tag`` (tag defaults to the version), pinned by ``@digest`` when given."""
    repository = raw.get("repository", DEFAULT_REPOSITORY)
    reference = f"{repository}:{raw.get('tag', version)}"
    if digest := raw.get("digest"):
        reference += f"@{digest}"
    return reference


def parse(raw: Mapping[str, Any]) -> ChatClusterSpec:
    """Parse a schema-validated spec; KeyError here means the CRD and this code disagree."""
    image = raw.get("image") or {}
    ingress = raw.get("ingress") or {}
    migrations = raw.get("migrations") or {}
    monitoring = raw.get("monitoring") or {}
    service_monitor = monitoring.get("serviceMonitor") or {}
    auth = raw["auth"]
    mongodb = raw.get("mongodb")
    jwt_ref = auth["jwtSecretRef"]
    jwt = SecretKey(name=str(jwt_ref["name"]), key=str(jwt_ref.get("key", "jwt-secret")))
    spec = ChatClusterSpec(
        version=str(raw["version"]),
        image=image_reference(image, str(raw["version"])),
        pull_policy=str(image.get("pullPolicy", "IfNotPresent")),
        pull_secrets=tuple(image.get("pullSecrets") or ()),
        api=_component(raw.get("api"), 2),
        websocket=_component(raw.get("websocket"), 2),
        drain_seconds=int((raw.get("websocket") or {}).get("drainSeconds", 30)),
        workers=tuple(
            WorkerPool(
                name=str(pool["name"]),
                queues=tuple(pool["queues"]),
                processes=int(pool.get("processes", 1)),
                threads=int(pool.get("threads", 4)),
                component=_component(pool, 1),
            )
            for pool in raw.get("workers") or ()
        ),
        ingress=Ingress(
            enabled=bool(ingress.get("enabled", False)),
            class_name=ingress.get("className"),
            host=ingress.get("host"),
            tls_secret=(ingress.get("tls") or {}).get("secretName"),
            websocket_path=str(ingress.get("websocketPath", "/ws")),
            annotations=dict(ingress.get("annotations") or {}),
        ),
        public_url=raw.get("publicURL"),
        redis=_dependency(raw["redis"], "url"),
        redis_key_prefix=str(raw["redis"].get("keyPrefix", "chat:")),
        postgres=_dependency(raw["postgres"], "dsn"),
        mongodb=_dependency(mongodb, "uri") if mongodb else None,
        jwt_secret=jwt,
        access_token_ttl_seconds=int(auth.get("accessTokenTTLSeconds", 900)),
        migrations=Migrations(
            enabled=bool(migrations.get("enabled", True)),
            backoff_limit=int(migrations.get("backoffLimit", 2)),
            active_deadline_seconds=int(migrations.get("activeDeadlineSeconds", 1800)),
        ),
        monitoring=Monitoring(
            service_monitor=bool(service_monitor.get("enabled", True)),
            interval=str(service_monitor.get("interval", "30s")),
            labels=dict(service_monitor.get("labels") or {}),
            dashboards=bool((monitoring.get("dashboards") or {}).get("enabled", False)),
        ),
        config=dict(raw.get("config") or {}),
        paused=bool(raw.get("paused", False)),
    )
    refs = [jwt] + [
        dep.secret for dep in (spec.redis, spec.postgres, spec.mongodb) if dep and dep.secret
    ]
    return ChatClusterSpec(**{**spec.__dict__, "secret_refs": tuple(refs)})
