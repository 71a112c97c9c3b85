"""Drift is repaired within a bound, ``paused`` stops all writes, deleting the ChatCluster
garbage-collects its children, and a restarted operator resumes."""

from __future__ import annotations

import pytest

from tests.k8s.cluster_helpers import (
    BOUND,
    apply_example,
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

pytestmark = pytest.mark.k8s

# Drift must be repaired within a few resync periods (1s in tests) plus apply latency.
REPAIR_BOUND = 30.0


@pytest.fixture
def ready_cluster(
    control_plane: ControlPlane, operator: OperatorProcess, kubelet: FakeKubelet, namespace: str
) -> str:
    apply_example(control_plane, namespace, "chatcluster-minimal.yaml")
    wait_ready(control_plane, namespace, "chat")
    return namespace


def test_deleted_child_is_recreated(control_plane: ControlPlane, ready_cluster: str) -> None:
    ns = ready_cluster
    old_uid = control_plane.get_json("service", "chat-api", "-n", ns)["metadata"]["uid"]
    control_plane.kubectl("delete", "service", "chat-api", "-n", ns)
    recreated = wait_for(
        "Service recreated",
        lambda: (
            (svc := control_plane.try_get("service", "chat-api", "-n", ns))
            and svc["metadata"]["uid"] != old_uid
            and svc
        ),
        REPAIR_BOUND,
    )
    assert recreated["spec"]["ports"][0]["targetPort"] == "http"

    control_plane.kubectl("delete", "deployment", "chat-ws", "-n", ns)
    wait_for(
        "Deployment recreated",
        lambda: deployment(control_plane, ns, "chat-ws") is not None,
        REPAIR_BOUND,
    )
    wait_ready(control_plane, ns, "chat")


def test_edited_managed_field_is_restored(control_plane: ControlPlane, ready_cluster: str) -> None:
    ns = ready_cluster
    control_plane.kubectl(
        "set", "image", "deployment/chat-api", "api=evil.example/miner:1", "-n", ns
    )
    control_plane.kubectl("scale", "deployment", "chat-api", "-n", ns, "--replicas=7")
    wait_for(
        "image and replicas restored",
        lambda: (
            (d := deployment(control_plane, ns, "chat-api"))
            and container(d)["image"] == "ghcr.io/chatcluster/chatcluster:1.0.0"
            and d["spec"]["replicas"] == 2
        ),
        REPAIR_BOUND,
    )
    events = control_plane.get_json(
        "events", "-n", ns, "--field-selector", "involvedObject.name=chat,reason=Updated"
    )["items"]
    assert any("Deployment chat-api" in e["message"] for e in events)


def test_paused_cluster_is_left_alone(
    control_plane: ControlPlane, operator: OperatorProcess, ready_cluster: str
) -> None:
    ns = ready_cluster
    patch_spec(control_plane, ns, "chat", {"paused": True})
    wait_phase(control_plane, ns, "chat", "Paused")
    control_plane.kubectl("delete", "service", "chat-ws", "-n", ns)
    patch_spec(control_plane, ns, "chat", {"api": {"replicas": 4}})
    seen = operator.reconciles()
    wait_for("three more reconciles", lambda: operator.reconciles() >= seen + 3, BOUND)
    assert control_plane.try_get("service", "chat-ws", "-n", ns) is None
    dep = deployment(control_plane, ns, "chat-api")
    assert dep is not None
    assert dep["spec"]["replicas"] == 2

    patch_spec(control_plane, ns, "chat", {"paused": False})
    wait_for(
        "Service back after unpause",
        lambda: control_plane.try_get("service", "chat-ws", "-n", ns),
        REPAIR_BOUND,
    )
    wait_for(
        "replicas follow after unpause",
        lambda: (d := deployment(control_plane, ns, "chat-api")) and d["spec"]["replicas"] == 4,
        REPAIR_BOUND,
    )


def test_delete_garbage_collects_children(control_plane: ControlPlane, ready_cluster: str) -> None:
    ns = ready_cluster
    assert names(control_plane, ns, "deployments", "chat")
    control_plane.kubectl("delete", "chatcluster", "chat", "-n", ns, "--wait=true", "--timeout=60s")
    for kind in ("deployments", "services", "configmaps", "pdb", "jobs", "replicasets"):
        wait_for(
            f"{kind} garbage-collected",
            lambda kind=kind: not names(control_plane, ns, kind, "chat"),
            BOUND,
        )


def test_restarted_operator_resumes(
    control_plane: ControlPlane, operator: OperatorProcess, ready_cluster: str
) -> None:
    ns = ready_cluster
    operator.stop()
    try:
        patch_spec(control_plane, ns, "chat", {"api": {"replicas": 1}})
        dep = deployment(control_plane, ns, "chat-api")
        assert dep is not None
        assert dep["spec"]["replicas"] == 2  # nobody acted while the operator was down
    finally:
        operator.start()
    wait_for(
        "change applied after restart",
        lambda: (d := deployment(control_plane, ns, "chat-api")) and d["spec"]["replicas"] == 1,
        BOUND,
    )
    obj = wait_ready(control_plane, ns, "chat")
    assert obj["status"]["components"]["api"]["summary"] == "1/1"
