"""Which children need a write, and the repairs forced apply cannot make."""

from __future__ import annotations

from typing import Any

from chat_operator.builders import Cluster, workloads
from chat_operator.builders.config import config_map
from chat_operator.drift import APPLIED_ANNOTATION, covers, repairs, stamped, up_to_date


def live(manifest: dict[str, Any], **meta: Any) -> dict[str, Any]:
    """What the API server returns: our fields plus defaults and bookkeeping."""
    out = {**manifest, "metadata": {**manifest["metadata"], "resourceVersion": "7", **meta}}
    if out["kind"] == "Service":
        out["spec"] = {**out["spec"], "clusterIP": "10.0.0.5", "sessionAffinity": "None"}
    return out


def test_server_defaults_do_not_count_as_drift(minimal: Cluster) -> None:
    svc = stamped(workloads.ws_service(minimal))
    assert up_to_date(svc, live(svc))
    listed = {k: v for k, v in live(svc).items() if k not in ("apiVersion", "kind")}
    assert up_to_date(svc, listed)  # list items carry no apiVersion/kind


def test_an_edited_value_or_a_new_fingerprint_needs_a_write(minimal: Cluster) -> None:
    svc = stamped(workloads.ws_service(minimal))
    edited = live(svc)
    edited["spec"] = {**edited["spec"], "selector": {"app": "other"}}
    assert not up_to_date(svc, edited)
    older = live(svc)
    older["metadata"]["annotations"] = {APPLIED_ANNOTATION: "0" * 16}
    assert not up_to_date(svc, older)
    assert not covers([1, 2], [1])  # an extra list entry is drift too


def test_a_foreign_port_edit_is_replaced_with_a_guarded_patch(minimal: Cluster) -> None:
    svc = stamped(workloads.ws_service(minimal))
    edited = live(svc)
    edited["spec"]["ports"] = [{**svc["spec"]["ports"][0], "port": 8181}]
    ops = repairs(svc, edited)
    assert ops[0] == {"op": "test", "path": "/metadata/resourceVersion", "value": "7"}
    assert ops[1] == {"op": "replace", "path": "/spec/ports", "value": svc["spec"]["ports"]}
    assert repairs(svc, live(svc)) == []


def test_foreign_configmap_keys_are_removed(minimal: Cluster) -> None:
    cm = stamped(config_map(minimal))
    edited = live(cm)
    edited["data"] = {**cm["data"], "CHAT_INJECTED": "evil"}
    assert repairs(cm, edited)[1] == {"op": "replace", "path": "/data", "value": cm["data"]}
