"""What ``kubectl get chatcluster`` shows: the status schema and the printer columns.

Status is written by the operator (status.py builds it as plain dicts), never by users, so it
has no typed model; its schema only bounds what the operator may store.
"""

from __future__ import annotations

from typing import Any

from chat_operator.patterns import MAX_NAME

Schema = dict[str, Any]


def _str(max_length: int, **extra: Any) -> Schema:
    return {"type": "string", "maxLength": max_length, **extra}


def _obj(properties: Schema, **extra: Any) -> Schema:
    return {"type": "object", "properties": properties, **extra}


def _generation() -> Schema:
    return {"type": "integer", "format": "int64", "minimum": 0}


def _replica_counts(**extra: Schema) -> Schema:
    count = {"type": "integer", "format": "int32", "minimum": 0, "maximum": 100000}
    names = ("desired", "ready", "updated", "available")
    return _obj({**{n: dict(count) for n in names}, "summary": _str(32), **extra})


def status_schema() -> Schema:
    condition = _obj(
        {
            "type": _str(316),
            "status": _str(8, enum=["True", "False", "Unknown"]),
            "observedGeneration": _generation(),
            "lastTransitionTime": {"type": "string", "format": "date-time"},
            "reason": _str(1024),
            "message": _str(32768),
        },
        required=["type", "status", "lastTransitionTime", "reason", "message"],
    )
    workers = _replica_counts(name=_str(MAX_NAME))
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


def _column(name: str, json_path: str, kind: str = "string", **extra: Any) -> Schema:
    return {"type": kind, "name": name, "jsonPath": json_path, **extra}


PRINTER_COLUMNS = [
    _column("Ready", '.status.conditions[?(@.type=="Ready")].status'),
    _column("Phase", ".status.phase"),
    _column("Version", ".status.version"),
    _column("API", ".status.components.api.summary"),
    _column("WS", ".status.components.websocket.summary"),
    # GEN != OBSERVED: status describes an older spec (the operator is down, or the last
    # pass could not apply every child).
    _column("Gen", ".metadata.generation", "integer"),
    _column("Observed", ".status.observedGeneration", "integer"),
    _column("Reason", '.status.conditions[?(@.type=="Degraded")].reason', priority=1),
    _column("Age", ".metadata.creationTimestamp", "date"),
]
