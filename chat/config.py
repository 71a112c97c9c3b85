"""One typed settings object, read once from the environment (CHAT_*, plus the conventional
REDIS_URL, POSTGRES_DSN, MONGODB_URI) and command-line overrides. It fails loudly: a bad value
names its variable; booleans are strict; a CHAT_* variable that names no setting stops start-up
(a typo or a renamed setting must not be silently ignored).

Every setting's environment name is declared here, once, next to the field (`env(...)`
metadata); the operator imports the names from this module instead of spelling them again.
`Limits` fields are read as CHAT_LIMIT_<FIELD NAME>, derived here, so a limit added to
chat/domain/limits.py is configurable without touching this file.
"""

from __future__ import annotations

import difflib
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from chat.domain.limits import Limits


class ConfigError(ValueError):
    """A setting is missing, malformed or unknown; the message names it."""


class Backend(StrEnum):
    EMBEDDED = "embedded"  # SQLite + in-process bus and broker: one process, no servers
    CLUSTER = "cluster"  # Redis + PostgreSQL + MongoDB + Dramatiq on Redis


def env(name: str) -> dict[str, str]:
    """Field metadata: the environment variable a setting is read from."""
    return {"env": name}


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")
EVENT_LOOPS = ("uvloop", "asyncio")
KEY_PREFIX_PATTERN = re.compile(r"^[-_:.a-zA-Z0-9]{0,64}$")
"""Letters, digits and `-_:.`: no `{`/`}`, which would break the keys' Redis Cluster hash tags;
the CRD's `spec.redis.keyPrefix` has the same pattern."""


@dataclass(frozen=True, slots=True)
class Settings:
    backend: Backend = field(default=Backend.EMBEDDED, metadata=env("CHAT_BACKEND"))
    """Which family of stores to use."""
    data_dir: Path = field(default=Path(".chatdata"), metadata=env("CHAT_DATA_DIR"))
    """Embedded mode: where the SQLite files live."""
    host: str = field(default="127.0.0.1", metadata=env("CHAT_HOST"))
    """Interface to listen on; containers set 0.0.0.0."""
    port: int = field(default=8000, metadata=env("CHAT_PORT"))
    """HTTP port (API, gateway and web client share it in `dev`)."""
    metrics_port: int = field(default=9191, metadata=env("CHAT_METRICS_PORT"))
    """Port of the separate Prometheus listener (`GET /metrics`) of `api`, `ws` and `worker`,
    on `host`; 0 disables it. Internal: never routed by the Ingress, unlike `port`. `dev`
    serves none unless asked (see docs/deploy.md)."""
    public_url: str = field(default="", metadata=env("CHAT_PUBLIC_URL"))
    """Origin browsers use, e.g. https://chat.example.com; empty means derived from host:port."""
    allowed_origins: tuple[str, ...] = field(default=(), metadata=env("CHAT_ALLOWED_ORIGINS"))
    """Exact Origin values a WebSocket may come from (comma-separated); empty allows only
    `public_url`."""
    jwt_secret: str = field(default="", metadata=env("CHAT_JWT_SECRET"))
    """HS256 key, at least 32 bytes. Required in cluster mode (all pods must share it); embedded
    mode keeps a generated one in the data directory."""
    jwt_issuer: str = field(default="chatcluster", metadata=env("CHAT_JWT_ISSUER"))
    jwt_audience: str = field(default="chatcluster-clients", metadata=env("CHAT_JWT_AUDIENCE"))
    access_ttl_s: int = field(default=900, metadata=env("CHAT_ACCESS_TTL_S"))
    """Access-token lifetime, seconds: short, because refresh tokens rotate."""
    refresh_ttl_s: int = field(default=30 * 24 * 3600, metadata=env("CHAT_REFRESH_TTL_S"))
    """Refresh-token family lifetime without use, seconds."""
    admins: frozenset[str] = field(default=frozenset(), metadata=env("CHAT_ADMINS"))
    """Usernames that are admins when they register (comma-separated)."""
    redis_url: str = field(default="", metadata=env("REDIS_URL"))
    """redis://[user:password@]host:port/db. With `redis_sentinels` set, only its credentials,
    database and TLS scheme are used: the Sentinels name the primary's address."""
    redis_sentinels: tuple[str, ...] = field(default=(), metadata=env("CHAT_REDIS_SENTINELS"))
    """Redis Sentinel addresses, `host:port` comma-separated (three or more, on separate
    hosts); empty connects to `redis_url` directly. Every client (stores, pub/sub, Dramatiq)
    then asks them for the current primary and follows a failover."""
    redis_sentinel_master: str = field(
        default="mymaster", metadata=env("CHAT_REDIS_SENTINEL_MASTER")
    )
    """The primary's name as the Sentinels know it (`sentinel monitor <name> ...`)."""
    redis_min_replicas: int | None = field(default=None, metadata=env("CHAT_REDIS_MIN_REPLICAS"))
    """A send is acked only after its write reached this many replicas (`WAIT`). Unset means
    1 with `redis_sentinels` (an acked message survives a failover) and 0 without (a single
    Redis: durability is its fsynced AOF). More is safer, and costs a replica round trip per
    send; with fewer live replicas than this, sends fail (retriable) instead of being acked."""
    redis_wait_timeout_ms: int = field(default=1000, metadata=env("CHAT_REDIS_WAIT_TIMEOUT_MS"))
    """How long a send waits for `redis_min_replicas` replicas, milliseconds, before it is
    answered `dependency_unavailable` (the client retries; the retry is deduplicated)."""
    redis_key_prefix: str = field(default="chat:", metadata=env("CHAT_REDIS_KEY_PREFIX"))
    """Prepended to every Redis key, pub/sub channel and Dramatiq queue of this cluster, so two
    clusters can share one Redis. Changing it orphans the existing keys."""
    postgres_dsn: str = field(default="", metadata=env("POSTGRES_DSN"))
    mongodb_uri: str = field(default="", metadata=env("MONGODB_URI"))
    mongodb_database: str = field(default="chat", metadata=env("MONGODB_DATABASE"))
    drain_timeout_s: float = field(default=20.0, metadata=env("CHAT_DRAIN_TIMEOUT_S"))
    """On SIGTERM the gateway closes sockets with 1012 and waits this long (seconds) for them
    to go."""
    sweep_interval_s: float = field(default=30.0, metadata=env("CHAT_SWEEP_INTERVAL_S"))
    """How often the worker looks for conversations whose persistence job was never queued."""
    persist_linger_ms: int = field(default=1000, metadata=env("CHAT_PERSIST_LINGER_MS"))
    """How long a persistence batch job waits before it takes the dirty set, milliseconds: the
    sends of that window share one job (one MongoDB insert). Longer means fewer MongoDB round
    trips per message and a later search hit; history, live delivery and durability never wait
    for it. Embedded mode lingers too; its search archives the conversations it searches
    first."""
    retention_days: int = field(default=0, metadata=env("CHAT_RETENTION_DAYS"))
    """Delete archived messages older than this; 0 keeps them forever."""
    oidc_issuer: str = field(default="", metadata=env("CHAT_OIDC_ISSUER"))
    """OpenID Provider issuer URL; empty disables "sign in with" (authorization code + PKCE)."""
    oidc_client_id: str = field(default="", metadata=env("CHAT_OIDC_CLIENT_ID"))
    oidc_client_secret: str = field(default="", metadata=env("CHAT_OIDC_CLIENT_SECRET"))
    """Empty for a public client (PKCE alone)."""
    oidc_scopes: str = field(default="openid profile", metadata=env("CHAT_OIDC_SCOPES"))
    oidc_display_name: str = field(default="single sign-on", metadata=env("CHAT_OIDC_DISPLAY_NAME"))
    """Shown on the login button: "Sign in with <this>"."""
    log_level: str = field(default="INFO", metadata=env("CHAT_LOG_LEVEL"))
    """One of DEBUG, INFO, WARNING, ERROR, CRITICAL (any case); `--log-level` wins."""
    log_format: str = field(default="text", metadata=env("CHAT_LOG_FORMAT"))
    """`text` (human-readable lines) or `json` (one object per line, with request, connection,
    user and conversation ids where they apply; chat/logs.py). Text by default: people read
    logs on a laptop; a log pipeline asks for JSON."""
    event_loop: str = field(default="uvloop", metadata=env("CHAT_EVENT_LOOP"))
    """`uvloop` (libuv's event loop: less CPU per frame on the gateway's delivery path,
    docs/performance.md) or `asyncio` (the standard library's), for the API, gateway and `dev`
    processes. uvloop raises RuntimeError for a write on a transport the peer reset, where
    asyncio raises an OSError; the Redis connections translate it into a ConnectionError
    (chat/stores/cluster/redis_conn.py), so an outage is `dependency_unavailable` on either loop
    (tests/multiprocess/test_network_faults.py passes on both)."""
    pod_name: str = field(default="", metadata=env("CHAT_POD_NAME"))
    """This pod's name (the operator sets it from `metadata.name`); shown in the start-up line so
    a log names the pod it came from. Empty outside Kubernetes."""
    limits: Limits = field(default_factory=Limits)
    """Per-client bounds, each read from CHAT_LIMIT_<FIELD> (see chat/domain/limits.py)."""

    @property
    def redis_replicas_required(self) -> int:
        """`redis_min_replicas`, or its default: 1 with Sentinel, 0 without."""
        if self.redis_min_replicas is not None:
            return self.redis_min_replicas
        return 1 if self.redis_sentinels else 0

    @property
    def origin(self) -> str:
        return self.public_url.rstrip("/") or f"http://{self.host}:{self.port}"

    @property
    def oidc_redirect_uri(self) -> str:
        return f"{self.origin}/api/v1/auth/oidc/callback"

    @property
    def origins(self) -> frozenset[str]:
        return frozenset(self.allowed_origins or (self.origin,))


ENV: Mapping[str, str] = {f.name: f.metadata["env"] for f in fields(Settings) if f.metadata}
"""Settings attribute -> environment variable."""
LIMIT_ENV: Mapping[str, str] = {f.name: f"CHAT_LIMIT_{f.name.upper()}" for f in fields(Limits)}
"""Limits attribute -> environment variable."""
KNOWN_ENV: frozenset[str] = frozenset((*ENV.values(), *LIMIT_ENV.values()))
"""Every variable `load` reads."""


def env_name(attr: str) -> str:
    """The variable of a Settings attribute (or `limits.<attr>`); KeyError names a typo at
    import time of whoever asks (the operator's builders)."""
    if attr.startswith("limits."):
        return LIMIT_ENV[attr.removeprefix("limits.")]
    return ENV[attr]


def _parse(name: str, kind: object, raw: str) -> object:
    try:
        if kind in (int, "int", "int | None"):
            return int(raw)
        if kind in (float, "float"):
            return float(raw)
        if kind in (bool, "bool"):
            if raw not in ("true", "false", "1", "0"):
                raise ValueError("expected true/false")
            return raw in ("true", "1")
        if kind in (Path, "Path"):
            return Path(raw)
        if kind in (Backend, "Backend"):
            return Backend(raw)
        if kind == "tuple[str, ...]":
            return tuple(p.strip() for p in raw.split(",") if p.strip())
        if kind == "frozenset[str]":
            return frozenset(p.strip().lower() for p in raw.split(",") if p.strip())
        return raw
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is invalid: {exc}") from exc


def unknown_names(names: Iterable[str]) -> list[str]:
    """CHAT_* names in `names` that no setting reads, each with the closest known name."""
    out = []
    for name in sorted(n for n in names if n.startswith("CHAT_")):
        if name in KNOWN_ENV:
            continue
        close = difflib.get_close_matches(name, KNOWN_ENV, n=1)
        out.append(f"{name} (did you mean {close[0]}?)" if close else name)
    return out


def _read(
    env: Mapping[str, str], names: Mapping[str, str], kinds: Mapping[str, Any]
) -> dict[str, object]:
    return {
        attr: _parse(var, kinds[attr], env[var])
        for attr, var in names.items()
        if env.get(var, "") != ""  # empty means unset, as in a ConfigMap with a blank value
    }


def load(env: Mapping[str, str] | None = None, /, **overrides: object) -> Settings:
    """Settings from the environment, then keyword overrides (command-line flags)."""
    env = os.environ if env is None else env
    if unknown := unknown_names(env):
        raise ConfigError(
            f"unknown setting {', '.join(unknown)}: no chatcluster setting has this name "
            "(the settings are listed in docs/deploy.md)"
        )
    values = _read(env, ENV, {f.name: f.type for f in fields(Settings)})
    limit_values = _read(env, LIMIT_ENV, {f.name: f.type for f in fields(Limits)})
    values.update({k: v for k, v in overrides.items() if v is not None})
    settings = Settings(**values)  # type: ignore[arg-type]
    if limit_values:
        settings = replace(settings, limits=replace(settings.limits, **limit_values))  # type: ignore[arg-type]
    return validate(settings)


def validate(settings: Settings) -> Settings:
    if not 0 < settings.port < 65536:
        raise ConfigError(f"{ENV['port']}={settings.port} is out of range")
    if not 0 <= settings.metrics_port < 65536:
        raise ConfigError(f"{ENV['metrics_port']}={settings.metrics_port} is out of range")
    if settings.log_level.upper() not in LOG_LEVELS:
        raise ConfigError(
            f"{ENV['log_level']}={settings.log_level!r} is invalid: expected one of "
            + ", ".join(LOG_LEVELS)
        )
    if settings.log_format not in LOG_FORMATS:
        raise ConfigError(
            f"{ENV['log_format']}={settings.log_format!r} is invalid: expected one of "
            + ", ".join(LOG_FORMATS)
        )
    if settings.event_loop not in EVENT_LOOPS:
        raise ConfigError(
            f"{ENV['event_loop']}={settings.event_loop!r} is invalid: expected one of "
            + ", ".join(EVENT_LOOPS)
        )
    if not KEY_PREFIX_PATTERN.match(settings.redis_key_prefix):
        raise ConfigError(
            f"{ENV['redis_key_prefix']}={settings.redis_key_prefix!r} is invalid: at most 64 of "
            "letters, digits and -_:."
        )
    if settings.redis_min_replicas is not None and settings.redis_min_replicas < 0:
        raise ConfigError(f"{ENV['redis_min_replicas']}={settings.redis_min_replicas} is negative")
    if settings.redis_wait_timeout_ms <= 0:
        raise ConfigError(f"{ENV['redis_wait_timeout_ms']} must be positive")
    if not 0 <= settings.persist_linger_ms <= 60_000:
        raise ConfigError(f"{ENV['persist_linger_ms']} must be between 0 and 60000")
    for address in settings.redis_sentinels:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"{ENV['redis_sentinels']}: {address!r} is not host:port")
    if settings.backend is Backend.CLUSTER:
        missing = [
            ENV[attr]
            for attr in ("redis_url", "postgres_dsn", "mongodb_uri", "jwt_secret")
            if not getattr(settings, attr)
        ]
        if missing:
            raise ConfigError(f"cluster mode needs {', '.join(missing)}")
    if settings.oidc_issuer and not settings.oidc_client_id:
        raise ConfigError(f"{ENV['oidc_issuer']} is set but {ENV['oidc_client_id']} is not")
    if settings.jwt_secret and len(settings.jwt_secret.encode()) < 32:
        raise ConfigError(f"{ENV['jwt_secret']} must be at least 32 bytes")
    return settings


def embedded_secret(data_dir: Path) -> str:
    """A JWT key generated once per data directory, so `dev` restarts keep sessions valid."""
    path = data_dir / "jwt-secret"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret)
    return secret
