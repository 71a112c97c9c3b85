"""Spec changes flow to the children: replicas, autoscaling on/off (the HPA owns replicas),
worker pools added and removed, Secret rotation, and a version change gated by its
migration Job."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from chat_operator import FIELD_MANAGER

from tests.k8s.cluster_helpers import (
    BOUND,
    apply_example,
    cluster,
    container,
    deployment,
    names,
    patch_spec,
    wait_phase,
    wait_ready,
)
from tests.k8s.controlplane import ControlPlane, wait_for
from tests.k8s.fake_kubelet import FakeKubelet
from tests.k8s.operator_process import OperatorProcess
from tests.k8s.support import condition

pytestmark = pytest.mark.k8s

CHECKSUM = "chatcluster.dev/checksum"
Obj = dict[str, Any]


@pytest.fixture
def ready_cluster(
    control_plane: ControlPlane, operator: OperatorProcess, kubelet: FakeKubelet, namespace: str
) -> str:
    apply_example(control_plane, namespace, "chatcluster-minimal.yaml")
    wait_ready(control_plane, namespace, "chat")
    return namespace


def wait_deployment(
    plane: ControlPlane, ns: str, name: str, what: str, check: Callable[[Obj], bool]
) -> Obj:
    def probe() -> Obj | None:
        dep: Obj | None = plane.try_get("deployment", name, "-n", ns, "--show-managed-fields")
        return dep if dep is not None and check(dep) else None

    result: Obj = wait_for(f"{name}: {what}", probe, BOUND)
    return result


def owns_replicas(dep: Obj, manager: str) -> bool:
    return any(
        e["manager"] == manager and "f:replicas" in e.get("fieldsV1", {}).get("f:spec", {})
        for e in dep["metadata"]["managedFields"]
    )


def test_replicas_follow_the_spec(control_plane: ControlPlane, ready_cluster: str) -> None:
    ns = ready_cluster
    patch_spec(control_plane, ns, "chat", {"api": {"replicas": 3}})
    wait_deployment(
        control_plane, ns, "chat-api", "3 replicas", lambda d: d["spec"]["replicas"] == 3
    )
    obj = wait_ready(control_plane, ns, "chat")
    assert obj["status"]["components"]["api"]["summary"] == "3/3"


def test_autoscaling_hands_replicas_to_the_hpa_and_back(
    control_plane: ControlPlane, operator: OperatorProcess, ready_cluster: str
) -> None:
    ns = ready_cluster
    patch_spec(
        control_plane,
        ns,
        "chat",
        {
            "websocket": {
                "autoscaling": {
                    "minReplicas": 2,
                    "maxReplicas": 6,
                    "targetCPUUtilizationPercentage": 50,
                }
            }
        },
    )
    hpa = wait_for("HPA", lambda: control_plane.try_get("hpa", "chat-ws", "-n", ns), BOUND)
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    dep = wait_deployment(
        control_plane,
        ns,
        "chat-ws",
        "replicas released to the HPA",
        lambda d: not owns_replicas(d, FIELD_MANAGER),
    )
    assert dep["spec"]["replicas"] == 2  # not reset to the default of 1

    # Scale as the HPA controller would (scale subresource); the operator must not fight it.
    control_plane.kubectl("scale", "deployment", "chat-ws", "-n", ns, "--replicas=5")
    seen = operator.reconciles()
    wait_for("three more reconciles", lambda: operator.reconciles() >= seen + 3, BOUND)
    dep = deployment(control_plane, ns, "chat-ws")
    assert dep is not None
    assert dep["spec"]["replicas"] == 5

    # Autoscaling off: the HPA goes, the operator owns replicas again.
    control_plane.kubectl(
        "patch",
        "chatcluster",
        "chat",
        "-n",
        ns,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"websocket": {"autoscaling": None, "replicas": 2}}}),
    )
    wait_for("HPA pruned", lambda: control_plane.try_get("hpa", "chat-ws", "-n", ns) is None, BOUND)
    wait_deployment(
        control_plane,
        ns,
        "chat-ws",
        "back to 2 replicas",
        lambda d: d["spec"]["replicas"] == 2 and owns_replicas(d, FIELD_MANAGER),
    )


def test_worker_pools_are_added_and_removed(
    control_plane: ControlPlane, ready_cluster: str
) -> None:
    ns = ready_cluster
    patch_spec(
        control_plane,
        ns,
        "chat",
        {"workers": [{"name": "email", "queues": ["persist", "maintenance"], "threads": 2}]},
    )
    dep = wait_deployment(control_plane, ns, "chat-worker-email", "created", lambda d: True)
    assert container(dep)["args"][-3:] == ["--queues", "persist", "maintenance"]
    obj = wait_ready(control_plane, ns, "chat")
    assert [w["name"] for w in obj["status"]["components"]["workers"]] == ["email"]
    assert "chat-workers" in names(control_plane, ns, "services", "chat")

    patch_spec(control_plane, ns, "chat", {"workers": []})
    wait_for(
        "worker pool pruned",
        lambda: deployment(control_plane, ns, "chat-worker-email") is None,
        BOUND,
    )
    wait_for(
        "workers Service pruned",
        lambda: "chat-workers" not in names(control_plane, ns, "services", "chat"),
        BOUND,
    )


def test_secret_rotation_rolls_the_pods(control_plane: ControlPlane, ready_cluster: str) -> None:
    ns = ready_cluster
    before = deployment(control_plane, ns, "chat-api")
    assert before is not None
    old = before["spec"]["template"]["metadata"]["annotations"][CHECKSUM]
    rotated = control_plane.kubectl(
        "create",
        "secret",
        "generic",
        "chat-jwt",
        "-n",
        ns,
        "--from-literal=jwt-secret=rotated-rotated-rotated-rotated",
        "--dry-run=client",
        "-o",
        "yaml",
    ).stdout
    control_plane.kubectl("apply", "-f", "-", stdin=rotated)
    for name in ("chat-api", "chat-ws"):
        wait_deployment(
            control_plane,
            ns,
            name,
            "new checksum",
            lambda d: d["spec"]["template"]["metadata"]["annotations"][CHECKSUM] != old,
        )
    # The Deployment controller really rolls: a new ReplicaSet becomes the updated one.
    wait_ready(control_plane, ns, "chat")
    sets = control_plane.get_json("replicasets", "-n", ns, "-l", "app.kubernetes.io/component=api")[
        "items"
    ]
    assert len(sets) == 2


def test_version_change_waits_for_its_migration(
    control_plane: ControlPlane,
    operator: OperatorProcess,
    kubelet: FakeKubelet,
    ready_cluster: str,
) -> None:
    ns = ready_cluster
    kubelet.hold_migrations(ns)
    patch_spec(control_plane, ns, "chat", {"version": "1.1.0"})
    obj = wait_phase(control_plane, ns, "chat", "Migrating")
    job = obj["status"]["migration"]["job"]
    assert obj["status"]["migration"]["image"] == "ghcr.io/chatcluster/chatcluster:1.1.0"
    assert (
        control_plane.get_json("job", job, "-n", ns)["metadata"]["annotations"][
            "chatcluster.dev/image"
        ]
        == "ghcr.io/chatcluster/chatcluster:1.1.0"
    )

    # While the Job runs, several reconciles go by and nothing rolls.
    seen = operator.reconciles()
    wait_for("three more reconciles", lambda: operator.reconciles() >= seen + 3, BOUND)
    for name in ("chat-api", "chat-ws"):
        dep = deployment(control_plane, ns, name)
        assert dep is not None
        assert container(dep)["image"] == "ghcr.io/chatcluster/chatcluster:1.0.0"
    assert cluster(control_plane, ns, "chat")["status"]["version"] == "1.0.0"

    kubelet.hold_migrations(ns, held=False)
    obj = wait_ready(control_plane, ns, "chat")
    assert obj["status"]["version"] == "1.1.0"
    for name in ("chat-api", "chat-ws"):
        dep = deployment(control_plane, ns, name)
        assert dep is not None
        assert container(dep)["image"] == "ghcr.io/chatcluster/chatcluster:1.1.0"


def test_failed_migration_degrades_and_keeps_the_old_version(
    control_plane: ControlPlane,
    operator: OperatorProcess,
    kubelet: FakeKubelet,
    ready_cluster: str,
) -> None:
    ns = ready_cluster
    kubelet.fail_migrations(ns)
    patch_spec(control_plane, ns, "chat", {"version": "1.2.0", "migrations": {"backoffLimit": 0}})
    obj = wait_phase(control_plane, ns, "chat", "Degraded")
    degraded = condition(obj, "Degraded")
    assert degraded is not None
    assert degraded["reason"] == "MigrationFailed"
    assert obj["status"]["migration"]["state"] == "Failed"
    assert obj["status"]["version"] == "1.0.0"
    dep = deployment(control_plane, ns, "chat-api")
    assert dep is not None
    assert container(dep)["image"] == "ghcr.io/chatcluster/chatcluster:1.0.0"
    events = control_plane.get_json(
        "events", "-n", ns, "--field-selector", "involvedObject.name=chat,reason=MigrationFailed"
    )["items"]
    assert events

    # Fix forward: a new version with a working migration rolls out normally.
    kubelet.fail_migrations(ns, failing=False)
    patch_spec(control_plane, ns, "chat", {"version": "1.2.1"})
    obj = wait_ready(control_plane, ns, "chat")
    assert obj["status"]["version"] == "1.2.1"
    assert condition(obj, "Degraded")["status"] == "False"  # type: ignore[index]
