"""Names and helpers shared by the k8s tests and their fixtures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.k8s.k8s_binaries import ROOT

OPERATOR_NAMESPACE = "chat-system"
RELEASE = "chatcluster-operator"
SERVICE_ACCOUNT = RELEASE  # the chart's fullname when release name == chart name
CHART = ROOT / "charts" / "chatcluster-operator"

SECRETS: dict[str, dict[str, str]] = {
    "chat-db": {"dsn": "postgresql://chat:pw@postgres:5432/chat"},
    "chat-jwt": {"jwt-secret": "0123456789abcdef0123456789abcdef"},
    "chat-redis": {"url": "redis://:pw@redis:6379/0"},
    "chat-mongo": {"uri": "mongodb://chat:pw@mongo:27017/chat"},
}


def example(name: str) -> Path:
    return ROOT / "examples" / name


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or ():
        if cond["type"] == kind:
            return dict(cond)
    return None
