"""The model of one scaled component (api, websocket, each worker pool): replicas or
autoscaling, resources, scheduling, disruption budget. See `chat_operator.model` for how one
declaration yields both the CRD schema and the typed value the builders use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from chat.worker import QUEUES
from chat_operator.model import Prop, Schema, meta
from chat_operator.patterns import (
    DNS_LABEL,
    LABEL_VALUE,
    MAX_NAME,
    OBJECT_NAME,
    QUALIFIED_KEY,
    QUANTITY,
    key_rule,
    matches,
)

API_REPLICAS = 2
"""Replicas of api and websocket when neither replicas nor autoscaling is set: two, so one
pod can be rolled or evicted while the other serves."""
WORKER_REPLICAS = 1


def label_map(what: str) -> Mapping[str, Prop]:
    """Keys AND values must be what Kubernetes accepts as labels, or the child is refused."""
    return meta(
        maxProperties=32, items={"maxLength": 63, "pattern": LABEL_VALUE}, rules=[key_rule(what)]
    )


def annotation_map(what: str) -> Mapping[str, Prop]:
    return meta(maxProperties=32, items={"maxLength": 1024}, rules=[key_rule(what)])


def _quantity() -> Schema:
    return {
        "x-kubernetes-int-or-string": True,
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "maxLength": 32,
        "pattern": QUANTITY,
    }


def _resources() -> Schema:
    """A core/v1 ResourceRequirements subset, passed to the containers as written."""
    amounts = {
        "type": "object",
        "properties": {k: _quantity() for k in RESOURCES},
    }
    rules = [
        {
            # int-or-string values: string() makes both forms parseable by quantity().
            "rule": f"!has(self.requests) || !has(self.limits) || "
            f"!has(self.requests.{cel}) || !has(self.limits.{cel}) || "
            f"quantity(string(self.limits.{cel})).compareTo("
            f"quantity(string(self.requests.{cel}))) >= 0",
            "message": f"resources.limits.{name} must be >= resources.requests.{name}",
            "fieldPath": f".limits.{name}" if cel == name else f".limits['{name}']",
        }
        for name, cel in RESOURCES.items()
    ]
    return {
        "type": "object",
        "properties": {"requests": amounts, "limits": amounts},
        "x-kubernetes-validations": rules,
    }


# Each resource a container may request, and its name in CEL (which escapes '-').
RESOURCES = {"cpu": "cpu", "memory": "memory", "ephemeral-storage": "ephemeral__dash__storage"}


def _enum(*values: str) -> Schema:
    return {"type": "string", "maxLength": 16, "enum": list(values)}


def _tolerations() -> Schema:
    """core/v1 Tolerations, passed through; the rules are the ones the Deployment would be
    refused for (core/v1 validation), so the ChatCluster is refused first, naming them."""
    toleration = {
        "type": "object",
        "properties": {
            "key": {
                "type": "string",
                "maxLength": 316,
                "x-kubernetes-validations": [
                    matches(QUALIFIED_KEY, "toleration keys must be valid label keys")
                ],
            },
            "operator": _enum("Exists", "Equal"),
            "value": {
                "type": "string",
                "maxLength": 63,
                "x-kubernetes-validations": [
                    matches(LABEL_VALUE, "toleration values must be valid label values")
                ],
            },
            "effect": _enum("NoSchedule", "PreferNoSchedule", "NoExecute"),
            "tolerationSeconds": {"type": "integer", "format": "int64", "minimum": 0},
        },
        "x-kubernetes-validations": [
            {
                # An omitted operator means Equal.
                "rule": "(has(self.key) && self.key != '') || "
                "(has(self.operator) && self.operator == 'Exists')",
                "message": "a toleration without a key must have operator Exists (it then "
                "tolerates every taint)",
            },
            {
                "rule": "!has(self.operator) || self.operator != 'Exists' || "
                "!has(self.value) || self.value == ''",
                "message": "a toleration with operator Exists must not have a value",
                "fieldPath": ".value",
            },
            {
                "rule": "!has(self.tolerationSeconds) || "
                "(has(self.effect) && self.effect == 'NoExecute')",
                "message": "tolerationSeconds needs effect NoExecute",
                "fieldPath": ".tolerationSeconds",
            },
        ],
    }
    return {"type": "array", "maxItems": 32, "items": toleration}


def _topology_spread() -> Schema:
    """core/v1 TopologySpreadConstraints without the selector, which the operator adds."""
    constraint = {
        "type": "object",
        "properties": {
            "maxSkew": {"type": "integer", "format": "int32", "minimum": 1, "maximum": 100},
            "topologyKey": {"type": "string", "maxLength": 316},
            "whenUnsatisfiable": _enum("DoNotSchedule", "ScheduleAnyway"),
        },
        "required": ["maxSkew", "topologyKey", "whenUnsatisfiable"],
    }
    return {
        "type": "array",
        "maxItems": 8,
        "description": "Spread this component's pods; the operator fills in the label "
        "selector for the component.",
        "items": constraint,
    }


@dataclass(frozen=True, kw_only=True)
class Autoscaling:
    """A HorizontalPodAutoscaler; while it exists it owns the Deployment's replicas."""

    RULES: ClassVar[tuple[Schema, ...]] = (
        {
            "rule": "self.minReplicas <= self.maxReplicas",
            "message": "autoscaling.maxReplicas must be >= autoscaling.minReplicas",
            "fieldPath": ".maxReplicas",
        },
        {
            "rule": "has(self.targetCPUUtilizationPercentage) || "
            "has(self.targetMemoryUtilizationPercentage)",
            "message": "autoscaling needs targetCPUUtilizationPercentage and/or "
            "targetMemoryUtilizationPercentage",
        },
    )

    min_replicas: int = field(metadata=meta(minimum=1, maximum=1000))
    max_replicas: int = field(metadata=meta(minimum=1, maximum=1000))
    target_cpu: int | None = field(
        default=None, metadata=meta(key="targetCPUUtilizationPercentage", minimum=1, maximum=100)
    )
    target_memory: int | None = field(
        default=None, metadata=meta(key="targetMemoryUtilizationPercentage", minimum=1, maximum=100)
    )
    # Kubernetes' own default: five minutes of low load before a scale-down.
    scale_down_stabilization_seconds: int = field(
        default=300, metadata=meta(minimum=0, maximum=3600)
    )


_PERCENT: Schema = {
    "minimum": 0,
    "maxLength": 4,
    # 0% .. 100%: a larger percentage is refused by the PodDisruptionBudget itself.
    "pattern": r"^([0-9]|[1-9][0-9]|100)%$",
}


@dataclass(frozen=True, kw_only=True)
class Disruption:
    """`podDisruptionBudget`: on by default, so a node drain never takes every pod at once."""

    RULES: ClassVar[tuple[Schema, ...]] = (
        {
            "rule": "!(has(self.minAvailable) && has(self.maxUnavailable))",
            "message": "set at most one of podDisruptionBudget.minAvailable and maxUnavailable",
        },
    )

    enabled: bool = True
    min_available: int | str | None = field(default=None, metadata=meta(**_PERCENT))
    max_unavailable: int | str | None = field(default=None, metadata=meta(**_PERCENT))


@dataclass(frozen=True, kw_only=True)
class Component:
    """Scheduling and scaling settings shared by api, websocket and worker pools."""

    RULES: ClassVar[tuple[Schema, ...]] = (
        {
            "rule": "!(has(self.replicas) && has(self.autoscaling))",
            "message": "replicas and autoscaling are mutually exclusive: the HPA owns replicas",
        },
    )

    # Implied, never declared: a declared default would make has(self.replicas) always true.
    replicas: int = field(
        default=API_REPLICAS,
        metadata=meta(
            implied=True,
            minimum=0,
            maximum=1000,
            description=f"Fixed replica count (default {API_REPLICAS} for api and websocket, "
            f"{WORKER_REPLICAS} for workers); mutually exclusive with autoscaling.",
        ),
    )
    autoscaling: Autoscaling | None = None
    resources: Mapping[str, Any] = field(default_factory=dict, metadata=meta(schema=_resources()))
    node_selector: Mapping[str, str] = field(
        default_factory=dict, metadata=label_map("nodeSelector")
    )
    tolerations: tuple[Mapping[str, Any], ...] = field(
        default=(), metadata=meta(schema=_tolerations())
    )
    affinity: Mapping[str, Any] | None = field(
        default=None,
        metadata=meta(
            schema={
                "type": "object",
                "description": "A core/v1 Affinity, passed through unchanged.",
                "x-kubernetes-preserve-unknown-fields": True,
            }
        ),
    )
    topology_spread: tuple[Mapping[str, Any], ...] = field(
        default=(), metadata=meta(key="topologySpreadConstraints", schema=_topology_spread())
    )
    # A PriorityClass name: the Deployment is refused otherwise.
    priority_class_name: str | None = field(
        default=None, metadata=meta(maxLength=253, pattern=OBJECT_NAME)
    )
    pod_annotations: Mapping[str, str] = field(
        default_factory=dict, metadata=annotation_map("podAnnotations")
    )
    pdb: Disruption = field(default_factory=Disruption, metadata=meta(key="podDisruptionBudget"))


@dataclass(frozen=True, kw_only=True)
class WebSocket(Component):
    drain_seconds: int = field(
        default=30,
        metadata=meta(
            minimum=1,
            maximum=3600,
            description="Time WebSocket pods get to close sockets with code 1012 after SIGTERM.",
        ),
    )


@dataclass(frozen=True, kw_only=True)
class WorkerPool:
    """One Deployment of workers consuming the given queues; its component settings sit
    beside name and queues in the same object."""

    name: str = field(metadata=meta(maxLength=MAX_NAME, pattern=DNS_LABEL))
    queues: tuple[str, ...] = field(
        metadata=meta(
            minItems=1,
            maxItems=16,
            description="Queues this pool consumes (the queues chatcluster's actors use).",
            items={"maxLength": 63, "enum": list(QUEUES)},
        )
    )
    processes: int = field(default=1, metadata=meta(minimum=1, maximum=64))
    threads: int = field(default=4, metadata=meta(minimum=1, maximum=64))
    component: Component = field(metadata=meta(inline=True, defaults={"replicas": WORKER_REPLICAS}))
