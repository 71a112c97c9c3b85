"""The ChatCluster spec, declared once: `chat_operator.crd` derives the CRD's OpenAPI schema
from these classes, and `parse` turns a spec the API server validated into them, with every
default filled. A field's type, default, bounds and description are stated only here (and in
`chat_operator.component` for the per-component settings); see `chat_operator.model`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from chat_operator.component import (
    Autoscaling,
    Component,
    Disruption,
    WebSocket,
    WorkerPool,
    annotation_map,
    label_map,
)
from chat_operator.config_keys import CONFIG_KEYS
from chat_operator.model import Schema, load, meta
from chat_operator.patterns import (
    CREDENTIAL_QUERY,
    DNS_LABEL,
    DNS_SUBDOMAIN,
    IMAGE_REPOSITORY,
    IMAGE_TAG,
    OBJECT_NAME,
    SEMVER,
    cel_list,
    downgrade_rule,
    matches,
)

__all__ = [
    "Autoscaling",
    "ChatClusterSpec",
    "Component",
    "Dependency",
    "Disruption",
    "WebSocket",
    "WorkerPool",
    "parse",
]

DEFAULT_REPOSITORY = "ghcr.io/chatcluster/chatcluster"


@dataclass(frozen=True, kw_only=True)
class SecretKey:
    """One key of a Secret in the cluster's namespace. Each use sets the default key."""

    name: str = field(metadata=meta(maxLength=253, pattern=OBJECT_NAME))
    key: str = field(metadata=meta(maxLength=253, pattern=r"^[-._a-zA-Z0-9]+$"))


@dataclass(frozen=True, kw_only=True)
class Dependency:
    """A backing service reached either by a credential-free URL or a Secret key."""

    RULES: ClassVar[tuple[Schema, ...]] = (
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
    )

    url: str | None = field(
        default=None,
        metadata=meta(
            maxLength=2048, description="A URL without credentials, e.g. redis://redis:6379/0."
        ),
    )
    secret: SecretKey | None = field(default=None, metadata=meta(key="secretRef"))


@dataclass(frozen=True, kw_only=True)
class Redis(Dependency):
    key_prefix: str = field(
        default="chat:",
        metadata=meta(
            maxLength=64,
            pattern=r"^[-_:.a-zA-Z0-9]*$",
            rules=[
                {
                    "rule": "self == oldSelf",
                    "message": "redis.keyPrefix is immutable: existing keys would be orphaned",
                }
            ],
        ),
    )


@dataclass(frozen=True, kw_only=True)
class Image:
    repository: str = field(
        default=DEFAULT_REPOSITORY, metadata=meta(maxLength=255, pattern=IMAGE_REPOSITORY)
    )
    tag: str | None = field(
        default=None,
        metadata=meta(
            maxLength=128,
            description="Defaults to version.",
            rules=[
                matches(
                    IMAGE_TAG,
                    "image.tag must be a valid image tag (letters, digits, '_', '.', '-'; "
                    "at most 128)",
                )
            ],
        ),
    )
    digest: str | None = field(
        default=None, metadata=meta(maxLength=71, pattern=r"^sha256:[a-f0-9]{64}$")
    )
    pull_policy: str = field(
        default="IfNotPresent",
        metadata=meta(maxLength=16, enum=["Always", "IfNotPresent", "Never"]),
    )
    pull_secrets: tuple[str, ...] = field(
        default=(), metadata=meta(maxItems=8, items={"maxLength": 253, "pattern": DNS_LABEL})
    )


@dataclass(frozen=True, kw_only=True)
class Tls:
    secret_name: str = field(metadata=meta(maxLength=253, pattern=DNS_LABEL))


@dataclass(frozen=True, kw_only=True)
class Ingress:
    RULES: ClassVar[tuple[Schema, ...]] = (
        {
            "rule": "!self.enabled || has(self.host)",
            "message": "ingress.host is required when ingress is enabled",
        },
    )

    enabled: bool = False
    # An IngressClass name: the Ingress is refused otherwise.
    class_name: str | None = field(default=None, metadata=meta(maxLength=253, pattern=OBJECT_NAME))
    host: str | None = field(
        default=None,
        metadata=meta(
            maxLength=253,
            rules=[
                {
                    "rule": f"self.matches(r'{DNS_SUBDOMAIN}') && "
                    "self.split('.').all(l, l.size() <= 63)",
                    "message": "ingress.host must be a DNS-1123 host name (lowercase labels of at "
                    "most 63 characters separated by single dots, optionally starting with '*.')",
                }
            ],
        ),
    )
    tls: Tls | None = None
    websocket_path: str = field(
        default="/ws", metadata=meta(maxLength=128, pattern=r"^/[-/_.a-zA-Z0-9]*$")
    )
    annotations: Mapping[str, str] = field(
        default_factory=dict, metadata=annotation_map("ingress.annotations")
    )

    @property
    def tls_secret(self) -> str | None:
        return self.tls.secret_name if self.tls else None


@dataclass(frozen=True, kw_only=True)
class Auth:
    jwt_secret_ref: SecretKey = field(metadata=meta(defaults={"key": "jwt-secret"}))
    access_token_ttl_seconds: int = field(
        default=900, metadata=meta(key="accessTokenTTLSeconds", minimum=60, maximum=86400)
    )


@dataclass(frozen=True, kw_only=True)
class Migrations:
    enabled: bool = True
    backoff_limit: int = field(default=2, metadata=meta(minimum=0, maximum=10))
    active_deadline_seconds: int = field(default=1800, metadata=meta(minimum=30, maximum=86400))


@dataclass(frozen=True, kw_only=True)
class ServiceMonitor:
    enabled: bool = True
    interval: str = field(default="30s", metadata=meta(maxLength=16, pattern=r"^[0-9]+(ms|s|m|h)$"))
    labels: Mapping[str, str] = field(
        default_factory=dict, metadata=label_map("monitoring.serviceMonitor.labels")
    )


@dataclass(frozen=True, kw_only=True)
class Dashboards:
    enabled: bool = False


@dataclass(frozen=True, kw_only=True)
class Monitoring:
    service_monitor: ServiceMonitor = field(default_factory=ServiceMonitor)
    dashboards: Dashboards = field(default_factory=Dashboards)


_CONFIG_RULES: tuple[Schema, ...] = (
    {
        "rule": "self.all(k, k.matches('^CHAT_[A-Z0-9_]{1,60}$'))",
        "message": "config keys must look like CHAT_SOMETHING",
    },
    {
        "rule": "!('CHAT_JWT_SECRET' in self)",
        "message": "CHAT_JWT_SECRET must come from auth.jwtSecretRef",
    },
    {
        # Generated from chat/config.py: the app refuses an unknown CHAT_* at start-up, so
        # refuse it here first, naming it.
        "rule": f"self.all(k, k in {cel_list(CONFIG_KEYS)})",
        "messageExpression": "'a config key that chatcluster does not read or that another "
        "spec field sets: ' + "
        f"self.filter(k, !(k in {cel_list(CONFIG_KEYS)}))[0]",
    },
)


@dataclass(frozen=True, kw_only=True)
class ChatClusterSpec:
    RULES: ClassVar[tuple[Schema, ...]] = (downgrade_rule(),)

    version: str = field(
        metadata=meta(
            maxLength=64,
            description="chatcluster release to run; also the default image tag.",
            rules=[
                matches(
                    SEMVER,
                    "version must be a semantic version without build metadata, e.g. 1.2.0 or "
                    "1.2.0-rc.1 (it is also the image tag, and '+' is not allowed in a tag)",
                )
            ],
        )
    )
    allow_downgrade: bool = field(
        default=False,
        metadata=meta(
            description="Permit lowering spec.version. The older release runs against a schema "
            "its successor already migrated; only for a release known to be compatible."
        ),
    )
    image: Image = field(default_factory=Image, metadata=meta(declare_empty=True))
    api: Component = field(default_factory=Component)
    websocket: WebSocket = field(default_factory=WebSocket)
    workers: tuple[WorkerPool, ...] = field(
        default=(),
        metadata=meta(
            maxItems=16,
            extensions={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
        ),
    )
    ingress: Ingress = field(default_factory=Ingress)
    public_url: str | None = field(
        default=None,
        metadata=meta(
            key="publicURL",
            maxLength=512,
            pattern=r"^https?://[a-zA-Z0-9]([-a-zA-Z0-9.]*[a-zA-Z0-9])?(:[0-9]{1,5})?/?$",
            description="The origin browsers use (scheme://host[:port]); sets CHAT_PUBLIC_URL "
            "and CHAT_ALLOWED_ORIGINS. Defaults to the ingress host (https with tls).",
        ),
    )
    redis: Redis = field(metadata=meta(defaults={"secretRef.key": "url"}))
    postgres: Dependency = field(metadata=meta(defaults={"secretRef.key": "dsn"}))
    mongodb: Dependency = field(metadata=meta(defaults={"secretRef.key": "uri"}))
    auth: Auth = field()
    migrations: Migrations = field(default_factory=Migrations, metadata=meta(declare_empty=True))
    monitoring: Monitoring = field(default_factory=Monitoring, metadata=meta(declare_empty=True))
    config: Mapping[str, str] = field(
        default_factory=dict,
        metadata=meta(
            maxProperties=64,
            items={"maxLength": 4096},
            description="Extra CHAT_* environment for every component (not secrets).",
            rules=_CONFIG_RULES,
        ),
    )
    paused: bool = field(
        default=False,
        metadata=meta(description="Stop changing children; status is still reported."),
    )

    # Derived values, and the shorter names the builders use.

    @property
    def image_reference(self) -> str:
        """``repository:tag`` (tag defaults to the version), pinned by ``@digest`` if given."""
        reference = f"{self.image.repository}:{self.image.tag or self.version}"
        return f"{reference}@{self.image.digest}" if self.image.digest else reference

    @property
    def secret_refs(self) -> tuple[SecretKey, ...]:
        """Every Secret key the pods read: a change to any of them rolls the pods."""
        deps = (self.redis, self.postgres, self.mongodb)
        return (self.jwt_secret, *(dep.secret for dep in deps if dep.secret))

    @property
    def pull_policy(self) -> str:
        return self.image.pull_policy

    @property
    def pull_secrets(self) -> tuple[str, ...]:
        return self.image.pull_secrets

    @property
    def drain_seconds(self) -> int:
        return self.websocket.drain_seconds

    @property
    def redis_key_prefix(self) -> str:
        return self.redis.key_prefix

    @property
    def jwt_secret(self) -> SecretKey:
        return self.auth.jwt_secret_ref

    @property
    def access_token_ttl_seconds(self) -> int:
        return self.auth.access_token_ttl_seconds


def parse(raw: Mapping[str, Any]) -> ChatClusterSpec:
    """Parse a schema-validated spec; ModelError here means the CRD and this code disagree."""
    return load(ChatClusterSpec, raw)
