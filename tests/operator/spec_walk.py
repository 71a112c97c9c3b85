"""Walk the ChatCluster spec model beside the CRD schema generated from it; shared by the
unit tests of the model and the API-server tests of the CRD."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from chat_operator import crd
from chat_operator.model import Field, is_model, model_fields, strip_none
from chat_operator.spec import ChatClusterSpec, parse

Schema = dict[str, Any]

REQUIRED_ONLY: dict[str, Any] = {
    "version": "1.0.0",
    "redis": {"url": "redis://redis:6379/0"},
    "postgres": {"secretRef": {"name": "chat-db"}},
    "mongodb": {"secretRef": {"name": "chat-mongo"}},
    "auth": {"jwtSecretRef": {"name": "chat-jwt"}},
}

# Every object present but empty, so the defaults inside each of them are exercised too.
EMPTY_OBJECTS: dict[str, Any] = {
    **REQUIRED_ONLY,
    "image": {},
    "api": {
        "autoscaling": {"minReplicas": 1, "maxReplicas": 2, "targetCPUUtilizationPercentage": 50},
        "podDisruptionBudget": {},
    },
    "websocket": {"podDisruptionBudget": {}},
    "workers": [{"name": "default", "queues": ["persist"], "podDisruptionBudget": {}}],
    "ingress": {"enabled": True, "host": "chat.example.com", "tls": {"secretName": "tls"}},
    "redis": {"secretRef": {"name": "r"}},
    "postgres": {"secretRef": {"name": "p"}},
    "mongodb": {"secretRef": {"name": "m"}},
    "migrations": {},
    "monitoring": {"serviceMonitor": {}, "dashboards": {}},
}


def spec_schema() -> Schema:
    root = crd.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    schema: Schema = root["properties"]["spec"]
    return schema


@dataclass(frozen=True)
class Leaf:
    """One scalar field: where it is in the spec, its model field, its generated schema."""

    path: tuple[str | int, ...]
    field: Field
    schema: Schema
    value: Any  # in the typed spec walked

    @property
    def name(self) -> str:
        text = "spec"
        for part in self.path:
            text += f"[{part}]" if isinstance(part, int) else f".{part}"
        return text


def leaves(obj: Any, schema: Schema, path: tuple[str | int, ...] = ()) -> Iterator[Leaf]:
    """Every scalar field of a typed (sub)spec, descending into present objects and lists."""
    for f in model_fields(type(obj)):
        value = getattr(obj, f.name)
        if f.meta.inline:
            yield from leaves(value, schema, path)
            continue
        sub = schema["properties"][f.key]
        hint = strip_none(f.hint)
        if is_model(hint):
            if value is not None:
                yield from leaves(value, sub, (*path, f.key))
        elif isinstance(value, tuple) and value and is_model(type(value[0])):
            for i, item in enumerate(value):
                yield from leaves(item, sub["items"], (*path, f.key, i))
        elif f.meta.schema is None and not isinstance(value, tuple | dict):
            yield Leaf((*path, f.key), f, sub, value)


def server_defaults(raw: Any, schema: Schema) -> Any:
    """Apply the schema's defaults the way the API server does (structural defaulting): a
    missing property with a default gets it, then defaulting descends into what is present."""
    if isinstance(raw, dict) and "properties" in schema:
        out = copy.deepcopy(raw)
        for key, sub in schema["properties"].items():
            if key not in out and "default" in sub:
                out[key] = copy.deepcopy(sub["default"])
            if key in out:
                out[key] = server_defaults(out[key], sub)
        return out
    if isinstance(raw, list) and "items" in schema:
        return [server_defaults(item, schema["items"]) for item in raw]
    return raw


def typed_required_only() -> ChatClusterSpec:
    return parse(REQUIRED_ONLY)
