"""The ChatCluster CustomResourceDefinition, generated from code so the repeated component
schema is written once. ``python -m chat_operator.crd`` prints the YAML committed in
``crds/`` and the chart; a unit test fails when they drift from this module.

Every string has a maxLength and every list a maxItems: the API server estimates the cost of
CEL rules from these bounds and refuses a CRD whose rules could run unbounded.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml  # type: ignore[import-untyped]

from chat.worker import QUEUES
from chat_operator import GROUP, KIND, PLURAL, VERSION
from chat_operator.builders.config import CONFIG_KEYS

Schema = dict[str, Any]

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
QUANTITY = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
# An OCI repository: optional registry host[:port], then lowercase path components.
IMAGE_REPOSITORY = (
    r"^([a-zA-Z0-9]([-a-zA-Z0-9.]*[a-zA-Z0-9])?(:[0-9]+)?/)?"
    r"[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*(/[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*)*$"
)
IMAGE_TAG = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
# Semantic version WITHOUT build metadata: the version is also the default image tag, and
# `+` is not allowed in an OCI tag.
SEMVER = r"^v?[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$"
MAX_NAME = 30  # "<name>-worker-<pool>" must stay a 63-character DNS label.
# A DNS-1123 subdomain, optionally a wildcard: what an Ingress host must be.
DNS_SUBDOMAIN = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# A label or annotation key: optional DNS-subdomain prefix, then a name of at most 63 chars.
QUALIFIED_KEY = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LABEL_VALUE = r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$"
# Query parameters that carry a credential (libpq, redis-py, PyMongo spellings).
CREDENTIAL_QUERY = (
    r"(?i)[?&;](password|passwd|pwd|pass|secret|token|access_?token|api_?key|sslpassword)="
)
# Strip the optional leading "v" so CEL's semver() can compare the versions.
_BARE_VERSION = "({v}.startsWith('v') ? {v}.substring(1) : {v})"


def _str(max_length: int = 253, **extra: Any) -> Schema:
    return {"type": "string", "maxLength": max_length, **extra}


def _int(minimum: int, maximum: int, **extra: Any) -> Schema:
    return {"type": "integer", "format": "int32", "minimum": minimum, "maximum": maximum, **extra}


def _obj(
    properties: Schema,
    *,
    required: list[str] | None = None,
    rules: list[Schema] | None = None,
    **extra: Any,
) -> Schema:
    schema: Schema = {"type": "object", "properties": properties, **extra}
    if required:
        schema["required"] = required
    if rules:
        schema["x-kubernetes-validations"] = rules
    return schema


def _string_map(max_properties: int = 32, value_len: int = 1024) -> Schema:
    return {
        "type": "object",
        "maxProperties": max_properties,
        "additionalProperties": _str(value_len),
    }


def _cel_list(items: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{item}'" for item in items) + "]"


def _key_rule(what: str) -> Schema:
    return {
        "rule": f"self.all(k, k.size() <= 253 && k.matches(r'{QUALIFIED_KEY}'))",
        "message": f"{what} keys must be valid label keys ([prefix/]name, name at most 63 "
        "characters of alphanumerics, '-', '_' and '.')",
    }


def _annotation_map(what: str) -> Schema:
    return {**_string_map(), "x-kubernetes-validations": [_key_rule(what)]}


def _label_map(what: str) -> Schema:
    """Keys AND values must be what Kubernetes accepts as labels, or the child is refused."""
    return {
        "type": "object",
        "maxProperties": 32,
        "additionalProperties": _str(
            63,
            pattern=LABEL_VALUE,
        ),
        "x-kubernetes-validations": [_key_rule(what)],
    }


def _quantity() -> Schema:
    return {
        "x-kubernetes-int-or-string": True,
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "maxLength": 32,
        "pattern": QUANTITY,
    }


def _resources() -> Schema:
    amounts = _obj(
        {"cpu": _quantity(), "memory": _quantity(), "ephemeral-storage": _quantity()},
    )
    rules = [
        {
            # int-or-string values: string() makes both forms parseable by quantity().
            "rule": f"!has(self.requests) || !has(self.limits) || "
            f"!has(self.requests.{key}) || !has(self.limits.{key}) || "
            f"quantity(string(self.limits.{key})).compareTo("
            f"quantity(string(self.requests.{key}))) >= 0",
            "message": f"resources.limits.{name} must be >= resources.requests.{name}",
            "fieldPath": f".limits.{key}",
        }
        for name, key in (("cpu", "cpu"), ("memory", "memory"))
    ]
    return _obj({"requests": amounts, "limits": amounts}, rules=rules)


def _autoscaling() -> Schema:
    return _obj(
        {
            "minReplicas": _int(1, 1000),
            "maxReplicas": _int(1, 1000),
            "targetCPUUtilizationPercentage": _int(1, 100),
            "targetMemoryUtilizationPercentage": _int(1, 100),
            "scaleDownStabilizationSeconds": _int(0, 3600, default=300),
        },
        required=["minReplicas", "maxReplicas"],
        rules=[
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
        ],
    )


def _pdb() -> Schema:
    int_or_percent: Schema = {
        "x-kubernetes-int-or-string": True,
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "minimum": 0,
        "maxLength": 4,
        # 0% .. 100%: a larger percentage is refused by the PodDisruptionBudget itself.
        "pattern": r"^([0-9]|[1-9][0-9]|100)%$",
    }
    return _obj(
        {
            "enabled": {"type": "boolean", "default": True},
            "minAvailable": int_or_percent,
            "maxUnavailable": int_or_percent,
        },
        rules=[
            {
                "rule": "!(has(self.minAvailable) && has(self.maxUnavailable))",
                "message": "set at most one of podDisruptionBudget.minAvailable and maxUnavailable",
            }
        ],
    )


def _tolerations() -> Schema:
    return {
        "type": "array",
        "maxItems": 32,
        "items": _obj(
            {
                "key": _str(316),
                "operator": _str(16, enum=["Exists", "Equal"]),
                "value": _str(63),
                "effect": _str(16, enum=["NoSchedule", "PreferNoSchedule", "NoExecute"]),
                "tolerationSeconds": {"type": "integer", "format": "int64", "minimum": 0},
            }
        ),
    }


def _topology_spread() -> Schema:
    return {
        "type": "array",
        "maxItems": 8,
        "description": "Spread this component's pods; the operator fills in the label "
        "selector for the component.",
        "items": _obj(
            {
                "maxSkew": _int(1, 100),
                "topologyKey": _str(316),
                "whenUnsatisfiable": _str(16, enum=["DoNotSchedule", "ScheduleAnyway"]),
            },
            required=["maxSkew", "topologyKey", "whenUnsatisfiable"],
        ),
    }


def component_properties() -> Schema:
    """Fields shared by api, websocket and each worker pool."""
    return {
        "replicas": _int(
            0,
            1000,
            description="Fixed replica count (default 2 for api and "
            "websocket, 1 for workers); mutually exclusive with autoscaling.",
        ),
        "autoscaling": _autoscaling(),
        "resources": _resources(),
        "nodeSelector": _label_map("nodeSelector"),
        "tolerations": _tolerations(),
        "affinity": {
            "type": "object",
            "description": "A core/v1 Affinity, passed through unchanged.",
            "x-kubernetes-preserve-unknown-fields": True,
        },
        "topologySpreadConstraints": _topology_spread(),
        "priorityClassName": _str(253),
        "podAnnotations": _annotation_map("podAnnotations"),
        "podDisruptionBudget": _pdb(),
    }


COMPONENT_RULES = [
    {
        "rule": "!(has(self.replicas) && has(self.autoscaling))",
        "message": "replicas and autoscaling are mutually exclusive: the HPA owns replicas",
    }
]


def _component(extra: Schema | None = None) -> Schema:
    return _obj(
        {**component_properties(), **(extra or {})},
        rules=COMPONENT_RULES,
    )


def _secret_key_ref(default_key: str) -> Schema:
    return _obj(
        {
            "name": _str(253, pattern=DNS_LABEL[:-1] + r"(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"),
            "key": _str(253, default=default_key, pattern=r"^[-._a-zA-Z0-9]+$"),
        },
        required=["name"],
    )


def _dependency(default_key: str, extra: Schema | None = None) -> Schema:
    return _obj(
        {
            "url": _str(2048, description="A URL without credentials, e.g. redis://redis:6379/0."),
            "secretRef": _secret_key_ref(default_key),
            **(extra or {}),
        },
        rules=[
            {
                "rule": "has(self.url) != has(self.secretRef)",
                "message": "exactly one of url or secretRef must be set",
            },
            {
                "rule": "!has(self.url) || (!self.url.contains('@') && "
                f"!self.url.matches(r'{CREDENTIAL_QUERY}'))",
                "message": "url must not carry credentials (user:password@ or a password/token "
                "query parameter); store it in a Secret and use secretRef",
                "fieldPath": ".url",
            },
        ],
    )


def spec_schema() -> Schema:
    worker = _obj(
        {
            "name": _str(MAX_NAME, pattern=DNS_LABEL),
            "queues": {
                "type": "array",
                "minItems": 1,
                "maxItems": 16,
                "description": "Queues this pool consumes (the queues chatcluster's actors use).",
                "items": _str(63, enum=list(QUEUES)),
            },
            "processes": _int(1, 64, default=1),
            "threads": _int(1, 64, default=4),
            **component_properties(),
        },
        required=["name", "queues"],
        rules=COMPONENT_RULES,
    )
    return _obj(
        {
            "version": _str(
                64,
                description="chatcluster release to run; also the default image tag.",
                **{
                    "x-kubernetes-validations": [
                        {
                            "rule": f"self.matches(r'{SEMVER}')",
                            "message": "version must be a semantic version without build "
                            "metadata, e.g. 1.2.0 or 1.2.0-rc.1 (it is also the image tag, "
                            "and '+' is not allowed in a tag)",
                        }
                    ]
                },
            ),
            "allowDowngrade": {
                "type": "boolean",
                "default": False,
                "description": "Permit lowering spec.version. The older release runs against "
                "a schema its successor already migrated; only for a release known to "
                "be compatible.",
            },
            "image": _obj(
                {
                    "repository": _str(
                        255, pattern=IMAGE_REPOSITORY, default="ghcr.io/chatcluster/chatcluster"
                    ),
                    "tag": _str(
                        128,
                        description="Defaults to version.",
                        **{
                            "x-kubernetes-validations": [
                                {
                                    "rule": f"self.matches(r'{IMAGE_TAG}')",
                                    "message": "image.tag must be a valid image tag "
                                    "(letters, digits, '_', '.', '-'; at most 128)",
                                }
                            ]
                        },
                    ),
                    "digest": _str(71, pattern=r"^sha256:[a-f0-9]{64}$"),
                    "pullPolicy": _str(
                        16, enum=["Always", "IfNotPresent", "Never"], default="IfNotPresent"
                    ),
                    "pullSecrets": {
                        "type": "array",
                        "maxItems": 8,
                        "items": _str(253, pattern=DNS_LABEL),
                    },
                },
                default={},
            ),
            "api": _component(),
            "websocket": _component(
                {
                    "drainSeconds": _int(
                        1,
                        3600,
                        default=30,
                        description="Time WebSocket pods get to close sockets "
                        "with code 1012 after SIGTERM.",
                    )
                }
            ),
            "workers": {
                "type": "array",
                "maxItems": 16,
                "items": worker,
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
            },
            "ingress": _obj(
                {
                    "enabled": {"type": "boolean", "default": False},
                    "className": _str(253),
                    "host": _str(
                        253,
                        **{
                            "x-kubernetes-validations": [
                                {
                                    "rule": f"self.matches(r'{DNS_SUBDOMAIN}') && "
                                    "self.split('.').all(l, l.size() <= 63)",
                                    "message": "ingress.host must be a DNS-1123 host name "
                                    "(lowercase labels of at most 63 characters separated by "
                                    "single dots, optionally starting with '*.')",
                                }
                            ]
                        },
                    ),
                    "tls": _obj(
                        {"secretName": _str(253, pattern=DNS_LABEL)}, required=["secretName"]
                    ),
                    "websocketPath": _str(128, pattern=r"^/[-/_.a-zA-Z0-9]*$", default="/ws"),
                    "annotations": _annotation_map("ingress.annotations"),
                },
                rules=[
                    {
                        "rule": "!self.enabled || has(self.host)",
                        "message": "ingress.host is required when ingress is enabled",
                    }
                ],
            ),
            "publicURL": _str(
                512,
                pattern=r"^https?://[a-zA-Z0-9]([-a-zA-Z0-9.]*[a-zA-Z0-9])?(:[0-9]{1,5})?/?$",
                description="The origin browsers use (scheme://host[:port]); sets CHAT_PUBLIC_URL "
                "and CHAT_ALLOWED_ORIGINS. Defaults to the ingress host (https with tls).",
            ),
            "redis": _dependency(
                "url",
                {
                    "keyPrefix": _str(
                        64,
                        default="chat:",
                        pattern=r"^[-_:.a-zA-Z0-9]*$",
                        **{
                            "x-kubernetes-validations": [
                                {
                                    "rule": "self == oldSelf",
                                    "message": "redis.keyPrefix is immutable: existing "
                                    "keys would be orphaned",
                                }
                            ]
                        },
                    )
                },
            ),
            "postgres": _dependency("dsn"),
            "mongodb": _dependency("uri"),
            "auth": _obj(
                {
                    "jwtSecretRef": _secret_key_ref("jwt-secret"),
                    "accessTokenTTLSeconds": _int(60, 86400, default=900),
                },
                required=["jwtSecretRef"],
            ),
            "migrations": _obj(
                {
                    "enabled": {"type": "boolean", "default": True},
                    "backoffLimit": _int(0, 10, default=2),
                    "activeDeadlineSeconds": _int(30, 86400, default=1800),
                },
                default={},
            ),
            "monitoring": _obj(
                {
                    "serviceMonitor": _obj(
                        {
                            "enabled": {"type": "boolean", "default": True},
                            "interval": _str(16, pattern=r"^[0-9]+(ms|s|m|h)$", default="30s"),
                            "labels": _label_map("monitoring.serviceMonitor.labels"),
                        }
                    ),
                    "dashboards": _obj({"enabled": {"type": "boolean", "default": False}}),
                },
                default={},
            ),
            "config": {
                **_string_map(64, 4096),
                "description": "Extra CHAT_* environment for every component (not secrets).",
                "x-kubernetes-validations": [
                    {
                        "rule": "self.all(k, k.matches('^CHAT_[A-Z0-9_]{1,60}$'))",
                        "message": "config keys must look like CHAT_SOMETHING",
                    },
                    {
                        "rule": "!('CHAT_JWT_SECRET' in self)",
                        "message": "CHAT_JWT_SECRET must come from auth.jwtSecretRef",
                    },
                    {
                        # Generated from chat/config.py: the app refuses an unknown CHAT_* at
                        # start-up, so refuse it here first, naming it.
                        "rule": f"self.all(k, k in {_cel_list(CONFIG_KEYS)})",
                        "messageExpression": "'a config key that chatcluster does not read or "
                        "that another spec field sets: ' + "
                        f"self.filter(k, !(k in {_cel_list(CONFIG_KEYS)}))[0]",
                    },
                ],
            },
            "paused": {
                "type": "boolean",
                "default": False,
                "description": "Stop changing children; status is still reported.",
            },
        },
        required=["version", "redis", "postgres", "mongodb", "auth"],
        rules=[_downgrade_rule()],
    )


def _downgrade_rule() -> Schema:
    """A transition rule (``oldSelf``): only checked on update, never on create."""
    new, old = _BARE_VERSION.format(v="self.version"), _BARE_VERSION.format(v="oldSelf.version")
    return {
        "rule": f"self.allowDowngrade || semver({new}).compareTo(semver({old})) >= 0",
        "messageExpression": "'version ' + self.version + ' is older than ' + oldSelf.version"
        " + ': a downgrade runs the old release against a schema its successor migrated;"
        " set spec.allowDowngrade: true to force it'",
        "fieldPath": ".version",
        "reason": "FieldValueForbidden",
    }


def _replica_counts() -> Schema:
    return _obj(
        {
            "desired": _int(0, 100000),
            "ready": _int(0, 100000),
            "updated": _int(0, 100000),
            "available": _int(0, 100000),
            "summary": _str(32),
        }
    )


def status_schema() -> Schema:
    condition = _obj(
        {
            "type": _str(316),
            "status": _str(8, enum=["True", "False", "Unknown"]),
            "observedGeneration": {"type": "integer", "format": "int64", "minimum": 0},
            "lastTransitionTime": {"type": "string", "format": "date-time"},
            "reason": _str(1024),
            "message": _str(32768),
        },
        required=["type", "status", "lastTransitionTime", "reason", "message"],
    )
    workers = {**_replica_counts()}
    workers["properties"] = {**workers["properties"], "name": _str(MAX_NAME)}
    return _obj(
        {
            "observedGeneration": {"type": "integer", "format": "int64"},
            "phase": _str(
                16, enum=["Pending", "Migrating", "Progressing", "Ready", "Degraded", "Paused"]
            ),
            "version": _str(64),
            "image": _str(512),
            "conditions": {
                "type": "array",
                "maxItems": 16,
                "items": condition,
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
            },
            "components": _obj(
                {
                    "api": _replica_counts(),
                    "websocket": _replica_counts(),
                    "workers": {"type": "array", "maxItems": 16, "items": workers},
                }
            ),
            "migration": _obj(
                {
                    "image": _str(512),
                    "job": _str(253),
                    "state": _str(16, enum=["Pending", "Running", "Succeeded", "Failed"]),
                }
            ),
            "endpoints": _obj({"api": _str(512), "websocket": _str(512), "ingress": _str(512)}),
        }
    )


def crd() -> Schema:
    """The complete apiextensions.k8s.io/v1 CustomResourceDefinition."""
    schema = _obj(
        {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec_schema(),
            "status": status_schema(),
        },
        required=["spec"],
        rules=[
            {
                "rule": f"self.metadata.name.size() <= {MAX_NAME}",
                "message": f"a ChatCluster name must be at most {MAX_NAME} characters",
            },
            {
                # Child names are "<name>-api", "<name>-worker-<pool>", "<name>-migrate-<hash>"
                # ...; forbidding the infixes in the cluster name makes the mapping from
                # (cluster, pool) to child names injective, so two clusters in a namespace can
                # never ask for the same object (see builders/common.py).
                "rule": "!self.metadata.name.contains('-worker') && "
                "!self.metadata.name.contains('-migrate')",
                "message": "a ChatCluster name must not contain '-worker' or '-migrate': its "
                "child names could collide with another ChatCluster's",
            },
        ],
    )
    column = {"type": "string"}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "plural": PLURAL,
                "singular": "chatcluster",
                "kind": KIND,
                "listKind": f"{KIND}List",
                "shortNames": ["chc"],
                "categories": ["all", "chatcluster"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": schema},
                    "additionalPrinterColumns": [
                        {
                            **column,
                            "name": "Ready",
                            "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
                        },
                        {**column, "name": "Phase", "jsonPath": ".status.phase"},
                        {**column, "name": "Version", "jsonPath": ".status.version"},
                        {**column, "name": "API", "jsonPath": ".status.components.api.summary"},
                        {
                            **column,
                            "name": "WS",
                            "jsonPath": ".status.components.websocket.summary",
                        },
                        # GEN != OBSERVED: status describes an older spec (the operator
                        # is down, or the last pass could not apply every child).
                        {
                            "name": "Gen",
                            "type": "integer",
                            "jsonPath": ".metadata.generation",
                        },
                        {
                            "name": "Observed",
                            "type": "integer",
                            "jsonPath": ".status.observedGeneration",
                        },
                        {
                            **column,
                            "name": "Reason",
                            "jsonPath": '.status.conditions[?(@.type=="Degraded")].reason',
                            "priority": 1,
                        },
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                }
            ],
        },
    }


HEADER = (
    "# Generated by `python -m chat_operator.crd`; edit operator/chat_operator/crd.py instead.\n"
)


def render() -> str:
    return HEADER + str(yaml.safe_dump(crd(), sort_keys=False, width=100))


if __name__ == "__main__":
    sys.stdout.write(render())
