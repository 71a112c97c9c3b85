"""One typed settings object, read once from the environment (CHAT_*, plus the conventional
REDIS_URL, POSTGRES_DSN, MONGODB_URI) and command-line overrides. It fails loudly: a bad value
names its variable; booleans are strict."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from pathlib import Path

from chat.domain.limits import Limits


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names it."""


class Backend(StrEnum):
    EMBEDDED = "embedded"  # SQLite + in-process bus and broker: one process, no servers
    CLUSTER = "cluster"  # Redis + PostgreSQL + MongoDB + Dramatiq on Redis


@dataclass(frozen=True, slots=True)
class Settings:
    backend: Backend = Backend.EMBEDDED
    """Which family of stores to use."""
    data_dir: Path = Path(".chatdata")
    """Embedded mode: where the SQLite files live."""
    host: str = "127.0.0.1"
    """Interface to listen on; containers set 0.0.0.0."""
    port: int = 8000
    """HTTP port (API, gateway and web client share it in `dev`)."""
    public_url: str = ""
    """Origin browsers use, e.g. https://chat.example.com; empty means derived from host:port."""
    allowed_origins: tuple[str, ...] = ()
    """Exact Origin values a WebSocket may come from; empty allows only `public_url`."""
    jwt_secret: str = ""
    """HS256 key, at least 32 bytes. Required in cluster mode (all pods must share it); embedded
    mode keeps a generated one in the data directory."""
    jwt_issuer: str = "chatcluster"
    jwt_audience: str = "chatcluster-clients"
    access_ttl_s: int = 900
    """Access-token lifetime: short, because refresh tokens rotate."""
    refresh_ttl_s: int = 30 * 24 * 3600
    """Refresh-token family lifetime without use."""
    admins: frozenset[str] = frozenset()
    """Usernames that are admins when they register (CHAT_ADMINS, comma-separated)."""
    redis_url: str = ""
    postgres_dsn: str = ""
    mongodb_uri: str = ""
    mongodb_database: str = "chat"
    drain_timeout_s: float = 20.0
    """On SIGTERM the gateway closes sockets with 1012 and waits this long for them to go."""
    sweep_interval_s: float = 30.0
    """How often the worker looks for conversations whose persistence job was never queued."""
    retention_days: int = 0
    """Delete archived messages older than this; 0 keeps them forever."""
    oidc_issuer: str = ""
    """OpenID Provider issuer URL; empty disables "sign in with" (authorization code + PKCE)."""
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    """Empty for a public client (PKCE alone)."""
    oidc_scopes: str = "openid profile"
    oidc_display_name: str = "single sign-on"
    """Shown on the login button: "Sign in with <this>"."""
    limits: Limits = field(default_factory=Limits)

    @property
    def origin(self) -> str:
        return self.public_url.rstrip("/") or f"http://{self.host}:{self.port}"

    @property
    def oidc_redirect_uri(self) -> str:
        return f"{self.origin}/api/v1/auth/oidc/callback"

    @property
    def origins(self) -> frozenset[str]:
        return frozenset(self.allowed_origins or (self.origin,))


_ENV = {
    "backend": "CHAT_BACKEND",
    "data_dir": "CHAT_DATA_DIR",
    "host": "CHAT_HOST",
    "port": "CHAT_PORT",
    "public_url": "CHAT_PUBLIC_URL",
    "allowed_origins": "CHAT_ALLOWED_ORIGINS",
    "jwt_secret": "CHAT_JWT_SECRET",
    "jwt_issuer": "CHAT_JWT_ISSUER",
    "jwt_audience": "CHAT_JWT_AUDIENCE",
    "access_ttl_s": "CHAT_ACCESS_TTL_S",
    "refresh_ttl_s": "CHAT_REFRESH_TTL_S",
    "admins": "CHAT_ADMINS",
    "redis_url": "REDIS_URL",
    "postgres_dsn": "POSTGRES_DSN",
    "mongodb_uri": "MONGODB_URI",
    "mongodb_database": "MONGODB_DATABASE",
    "drain_timeout_s": "CHAT_DRAIN_TIMEOUT_S",
    "sweep_interval_s": "CHAT_SWEEP_INTERVAL_S",
    "retention_days": "CHAT_RETENTION_DAYS",
    "oidc_issuer": "CHAT_OIDC_ISSUER",
    "oidc_client_id": "CHAT_OIDC_CLIENT_ID",
    "oidc_client_secret": "CHAT_OIDC_CLIENT_SECRET",
    "oidc_scopes": "CHAT_OIDC_SCOPES",
    "oidc_display_name": "CHAT_OIDC_DISPLAY_NAME",
}


def _parse(name: str, kind: object, raw: str) -> object:
    try:
        if kind in (int, "int"):
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


def load(env: Mapping[str, str] | None = None, /, **overrides: object) -> Settings:
    """Settings from the environment, then keyword overrides (command-line flags)."""
    env = os.environ if env is None else env
    values: dict[str, object] = {}
    types = {f.name: f.type for f in fields(Settings)}
    for attr, var in _ENV.items():
        if var in env and env[var] != "":
            values[attr] = _parse(var, types[attr], env[var])
    limit_types = {f.name: f.type for f in fields(Limits)}
    limit_values: dict[str, object] = {}
    for attr, kind in limit_types.items():
        var = f"CHAT_LIMIT_{attr.upper()}"
        if var in env:
            limit_values[attr] = _parse(var, kind, env[var])
    values.update({k: v for k, v in overrides.items() if v is not None})
    settings = Settings(**values)  # type: ignore[arg-type]
    if limit_values:
        settings = replace(settings, limits=replace(settings.limits, **limit_values))  # type: ignore[arg-type]
    return validate(settings)


def validate(settings: Settings) -> Settings:
    if not 0 < settings.port < 65536:
        raise ConfigError(f"CHAT_PORT={settings.port} is out of range")
    if settings.backend is Backend.CLUSTER:
        missing = [
            var
            for attr, var in (
                ("redis_url", "REDIS_URL"),
                ("postgres_dsn", "POSTGRES_DSN"),
                ("mongodb_uri", "MONGODB_URI"),
                ("jwt_secret", "CHAT_JWT_SECRET"),
            )
            if not getattr(settings, attr)
        ]
        if missing:
            raise ConfigError(f"cluster mode needs {', '.join(missing)}")
    if settings.oidc_issuer and not settings.oidc_client_id:
        raise ConfigError("CHAT_OIDC_ISSUER is set but CHAT_OIDC_CLIENT_ID is not")
    if settings.jwt_secret and len(settings.jwt_secret.encode()) < 32:
        raise ConfigError("CHAT_JWT_SECRET must be at least 32 bytes")
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
