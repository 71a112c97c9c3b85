"""The operator survives losing RBAC and API errors (backs off, reports, never exits), two
replicas elect one leader that writes, and a ChatCluster can be deleted while no operator
runs (there is no finalizer to wait for)."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.k8s.cluster_helpers import (
    BOUND,
    apply_example,
    cluster,
    deployment,
    names,
    patch_spec,
    wait_ready,
)
from tests.k8s.controlplane import ControlPlane, wait_for
from tests.k8s.fake_kubelet import FakeKubelet
from tests.k8s.operator_process import LEASE_NAMESPACE, OperatorProcess
from tests.k8s.support import OPERATOR_NAMESPACE, RELEASE, SERVICE_ACCOUNT, condition, example

pytestmark = pytest.mark.k8s

# Kopf's default retries of a failing request add up to 54 s before it gives up and the
# operator exits; survive well past that.
SURVIVE = 65.0


@pytest.fixture
def ready_cluster(
    control_plane: ControlPlane, operator: OperatorProcess, kubelet: FakeKubelet, namespace: str
) -> str:
    apply_example(control_plane, namespace, "chatcluster-minimal.yaml")
    wait_ready(control_plane, namespace, "chat")
    return namespace


@contextlib.contextmanager
def reduced_rbac(control_plane: ControlPlane) -> Iterator[None]:
    """The chart's ClusterRole without `watch` on chatclusters and without Services."""
    original = control_plane.get_json("clusterrole", RELEASE)
    reduced = json.loads(json.dumps(original))
    rules: list[dict[str, Any]] = []
    for rule in reduced["rules"]:
        if "chatclusters" in rule["resources"]:
            rule["verbs"] = [v for v in rule["verbs"] if v != "watch"]
        rule["resources"] = [r for r in rule["resources"] if r != "services"]
        if rule["resources"]:
            rules.append(rule)
    reduced["rules"] = rules
    control_plane.kubectl("replace", "-f", "-", stdin=json.dumps(reduced))
    try:
        yield
    finally:
        fresh = control_plane.get_json("clusterrole", RELEASE)
        original["metadata"]["resourceVersion"] = fresh["metadata"]["resourceVersion"]
        control_plane.kubectl("replace", "-f", "-", stdin=json.dumps(original))


def test_lost_rbac_is_reported_and_survived(
    control_plane: ControlPlane, operator: OperatorProcess, ready_cluster: str
) -> None:
    ns = ready_cluster
    with reduced_rbac(control_plane):
        operator.restart()  # its watches now start without permission
        started = time.monotonic()

        def reported() -> dict[str, Any] | None:
            degraded = condition(cluster(control_plane, ns, "chat"), "Degraded") or {}
            ok = degraded.get("status") == "True" and "forbidden" in degraded.get("message", "")
            return degraded if ok else None

        degraded = wait_for("Degraded naming the refused Services", reported, BOUND)
        assert "Service" in degraded["message"]
        assert condition(cluster(control_plane, ns, "chat"), "Ready")["status"] == "False"  # type: ignore[index]
        # Still alive and healthy long after Kopf's default retries would have given up.
        wait_for(
            "operator alive past Kopf's retry budget",
            lambda: time.monotonic() - started > SURVIVE and operator.healthy(),
            SURVIVE + 30,
            interval=1.0,
        )
        assert "will retry" in operator.full_log()
    # Permissions back: it converges without a restart.
    obj = wait_ready(control_plane, ns, "chat")
    assert condition(obj, "Degraded")["status"] == "False"  # type: ignore[index]


def test_no_finalizer_so_delete_works_without_the_operator(
    control_plane: ControlPlane, operator: OperatorProcess, ready_cluster: str
) -> None:
    ns = ready_cluster
    assert not cluster(control_plane, ns, "chat")["metadata"].get("finalizers")
    operator.stop()
    try:
        control_plane.kubectl("delete", "chatcluster", "chat", "-n", ns, "--timeout=30s")
        for kind in ("deployments", "services", "configmaps"):
            wait_for(
                f"{kind} garbage-collected",
                lambda kind=kind: not names(control_plane, ns, kind, "chat"),
                BOUND,
            )
    finally:
        operator.start()


def test_documented_finalizer_removal_for_clusters_of_older_operators(
    control_plane: ControlPlane, operator: OperatorProcess, release: str, namespace: str
) -> None:
    """Operators before this one put `chatcluster.dev/operator` on every ChatCluster; the
    command in docs/operator.md releases such a cluster when no operator runs."""
    ns = namespace
    manifest = example("chatcluster-minimal.yaml").read_text()
    manifest = manifest.replace(
        "  name: chat\n", "  name: chat\n  finalizers: [chatcluster.dev/operator]\n"
    )
    operator.stop()
    try:
        control_plane.kubectl("apply", "-n", ns, "-f", "-", stdin=manifest)
        control_plane.kubectl("delete", "chatcluster", "chat", "-n", ns, "--wait=false")
        stuck = cluster(control_plane, ns, "chat")
        assert stuck["metadata"].get("deletionTimestamp")
        control_plane.kubectl(*DOCUMENTED_FINALIZER_REMOVAL, "-n", ns)
        wait_for(
            "ChatCluster gone",
            lambda: control_plane.try_get("chatcluster", "chat", "-n", ns) is None,
            BOUND,
        )
    finally:
        operator.start()


DOCUMENTED_FINALIZER_REMOVAL = (
    "patch",
    "chatcluster",
    "chat",
    "--type=json",
    "-p",
    '[{"op":"remove","path":"/metadata/finalizers"}]',
)


def test_docs_show_the_finalizer_removal_command() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "operator.md").read_text()
    command = (
        f"kubectl patch chatcluster <name> --type=json -p '{DOCUMENTED_FINALIZER_REMOVAL[-1]}'"
    )
    assert command in docs


def lease_holder(plane: ControlPlane) -> str | None:
    lease = plane.try_get("lease", "chatcluster-operator", "-n", LEASE_NAMESPACE)
    return None if lease is None else lease["spec"].get("holderIdentity")


def test_two_replicas_one_leader_and_failover(
    control_plane: ControlPlane,
    operator: OperatorProcess,
    ready_cluster: str,
    tmp_path: Path,
) -> None:
    ns = ready_cluster
    wait_for("first replica leads", lambda: lease_holder(control_plane) == operator.identity, BOUND)
    token = control_plane.token_kubeconfig(OPERATOR_NAMESPACE, SERVICE_ACCOUNT)
    standby = OperatorProcess(token, tmp_path, identity="operator-b")
    standby.start()
    try:
        wait_for("standby passes resync", lambda: operator.reconciles() > 0, BOUND)
        assert standby.reconciles() == 0  # watches, never writes
        operator.kill()  # no release: the standby must wait out the Lease
        wait_for("standby takes over", lambda: lease_holder(control_plane) == "operator-b", BOUND)
        patch_spec(control_plane, ns, "chat", {"api": {"replicas": 3}})
        wait_for(
            "the new leader applies changes",
            lambda: (d := deployment(control_plane, ns, "chat-api")) and d["spec"]["replicas"] == 3,
            BOUND,
        )
        assert standby.reconciles() > 0
    finally:
        standby.stop()  # releases the Lease on SIGTERM
        operator.start()
    wait_for(
        "first replica leads again", lambda: lease_holder(control_plane) == operator.identity, BOUND
    )


def test_the_finalizer_of_older_operators_is_removed_on_upgrade(
    control_plane: ControlPlane, operator: OperatorProcess, release: str, namespace: str
) -> None:
    ns = namespace
    manifest = example("chatcluster-minimal.yaml").read_text()
    manifest = manifest.replace(
        "  name: chat\n", "  name: chat\n  finalizers: [chatcluster.dev/operator]\n"
    )
    control_plane.kubectl("apply", "-n", ns, "-f", "-", stdin=manifest)
    wait_for(
        "old finalizer removed",
        lambda: not cluster(control_plane, ns, "chat")["metadata"].get("finalizers"),
        BOUND,
    )
