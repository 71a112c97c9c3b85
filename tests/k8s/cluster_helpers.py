"""Small helpers for the ChatCluster integration tests: apply, patch, wait."""

from __future__ import annotations

import json
from typing import Any

from tests.k8s.controlplane import ControlPlane, wait_for
from tests.k8s.support import condition, example

BOUND = 90.0  # generous: two cores shared with etcd, apiserver, controllers and the operator


def apply_example(plane: ControlPlane, namespace: str, name: str) -> None:
    plane.kubectl("apply", "-n", namespace, "-f", str(example(name)))


def patch_spec(plane: ControlPlane, namespace: str, name: str, spec: dict[str, Any]) -> None:
    plane.kubectl(
        "patch",
        "chatcluster",
        name,
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": spec}),
    )


def cluster(plane: ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = plane.get_json("chatcluster", name, "-n", namespace)
    return found


def wait_ready(plane: ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    """Ready=True for the CURRENT generation (a stale Ready from before a change won't do)."""
    last: dict[str, Any] = {}

    def ready() -> dict[str, Any] | None:
        obj = cluster(plane, namespace, name)
        last["status"] = obj.get("status")
        cond = condition(obj, "Ready")
        current = obj["status"].get("observedGeneration") == obj["metadata"]["generation"]
        return obj if cond and cond["status"] == "True" and current else None

    try:
        result: dict[str, Any] = wait_for(f"{namespace}/{name} Ready", ready, BOUND)
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}\nlast status: {json.dumps(last.get('status'))}") from None
    return result


def wait_phase(plane: ControlPlane, namespace: str, name: str, phase: str) -> dict[str, Any]:
    result: dict[str, Any] = wait_for(
        f"{namespace}/{name} phase {phase}",
        lambda: (
            (obj := cluster(plane, namespace, name)).get("status", {}).get("phase") == phase and obj
        ),
        BOUND,
    )
    return result


def deployment(plane: ControlPlane, namespace: str, name: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = plane.try_get("deployment", name, "-n", namespace)
    return found


def names(plane: ControlPlane, namespace: str, kind: str, instance: str) -> set[str]:
    items = plane.get_json(kind, "-n", namespace, "-l", f"app.kubernetes.io/instance={instance}")[
        "items"
    ]
    return {i["metadata"]["name"] for i in items}


def container(dep: dict[str, Any]) -> dict[str, Any]:
    box: dict[str, Any] = dep["spec"]["template"]["spec"]["containers"][0]
    return box
