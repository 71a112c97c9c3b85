"""Deciding whether a child needs a write, and repairing the fields server-side apply cannot
take back.

Two facts about server-side apply shape this module:

- An apply that changes nothing still costs a request per child per pass. We skip it when
  the live object already carries every value we would set (``covers``) AND the fingerprint
  of the manifest we last applied (the annotation below) equals the current one; the
  fingerprint is what catches fields we stopped setting, which only an apply removes.
- Forced apply takes over the fields *we* set, but it never removes entries another manager
  added to a map or list we consider ours: a ``kubectl edit`` that changed a Service's port
  leaves a second port named ``ws`` (every later apply is refused with 422 Duplicate value),
  and a key added to the ConfigMap would be injected into every pod. For those exclusively
  owned fields we compare and, on a difference, replace them with an RFC 6902 patch first.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from chat_operator import GROUP

APPLIED_ANNOTATION = f"{GROUP}/applied"

Obj = dict[str, Any]

# (kind, JSON pointer): fields where nothing but our values may exist.
EXCLUSIVE: dict[str, tuple[tuple[str, ...], ...]] = {
    "ConfigMap": (("data",),),
    "Service": (("spec", "ports"), ("spec", "selector")),
}


def fingerprint(manifest: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:16]


def stamped(manifest: Mapping[str, Any]) -> Obj:
    """The manifest with its own fingerprint as an annotation (computed without it)."""
    meta = dict(manifest["metadata"])
    meta["annotations"] = {
        **(meta.get("annotations") or {}),
        APPLIED_ANNOTATION: fingerprint(manifest),
    }
    return {**manifest, "metadata": meta}


def covers(live: Any, desired: Any) -> bool:
    """Whether every value in ``desired`` is present and equal in ``live``. Server defaults
    (extra keys in maps) are fine; lists must match element by element."""
    if isinstance(desired, Mapping):
        return isinstance(live, Mapping) and all(
            key in live and covers(live[key], value) for key, value in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(live) == len(desired)
            and all(covers(a, b) for a, b in zip(live, desired, strict=True))
        )
    return bool(live == desired)


def up_to_date(stamped_manifest: Mapping[str, Any], live: Mapping[str, Any]) -> bool:
    want = (stamped_manifest["metadata"].get("annotations") or {}).get(APPLIED_ANNOTATION)
    have = (live["metadata"].get("annotations") or {}).get(APPLIED_ANNOTATION)
    # List items carry no apiVersion/kind; the collection they came from says both.
    body = {k: v for k, v in stamped_manifest.items() if k not in ("apiVersion", "kind")}
    return want is not None and want == have and covers(live, body)


def _at(obj: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(obj, Mapping) or part not in obj:
            return None
        obj = obj[part]
    return obj


def _same(kind: str, path: tuple[str, ...], live: Any, desired: Any) -> bool:
    if path == ("spec", "ports"):
        # The API server adds nothing to ClusterIP ports we set; compare the keys we set.
        return isinstance(live, list) and len(live) == len(desired) and covers(live, desired)
    return bool(live == desired)


def repairs(manifest: Mapping[str, Any], live: Mapping[str, Any]) -> list[Obj]:
    """JSON-patch operations that put our exclusively owned fields back, with a ``test`` of
    the resourceVersion so a concurrent writer makes the patch fail instead of being lost."""
    ops: list[Obj] = []
    for path in EXCLUSIVE.get(str(manifest["kind"]), ()):
        desired = _at(manifest, path)
        if desired is None:
            continue
        current = _at(live, path)
        if not _same(str(manifest["kind"]), path, current, desired):
            op = "add" if current is None else "replace"
            ops.append({"op": op, "path": "/" + "/".join(path), "value": desired})
    if ops:
        version = live["metadata"]["resourceVersion"]
        ops.insert(0, {"op": "test", "path": "/metadata/resourceVersion", "value": version})
    return ops
