"""The chart installs with helm and its RBAC is sufficient (the operator tests run under it)
and no broader than needed."""

from __future__ import annotations

import json

import pytest

from tests.k8s.controlplane import ControlPlane
from tests.k8s.support import CHART, OPERATOR_NAMESPACE, SERVICE_ACCOUNT

pytestmark = pytest.mark.k8s

SA = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{SERVICE_ACCOUNT}"


def test_helm_lint_is_clean(control_plane: ControlPlane) -> None:
    out = control_plane.helm("lint", "--strict", str(CHART)).stdout
    assert "0 chart(s) failed" in out


def test_release_deployed_with_two_leader_elected_replicas(
    control_plane: ControlPlane, release: str
) -> None:
    releases = json.loads(control_plane.helm("list", "-n", OPERATOR_NAMESPACE, "-o", "json").stdout)
    assert [(r["name"], r["status"]) for r in releases] == [(release, "deployed")]
    deployment = control_plane.get_json("deployment", release, "-n", OPERATOR_NAMESPACE)
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == SERVICE_ACCOUNT
    args = pod["containers"][0]["args"]
    assert args[0] == "operator"
    assert f"--leader-election-namespace={OPERATOR_NAMESPACE}" in args
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


@pytest.mark.parametrize(
    ("verb", "resource", "namespace", "allowed"),
    [
        ("update", "leases/chatcluster-operator", OPERATOR_NAMESPACE, True),
        ("create", "leases", OPERATOR_NAMESPACE, True),
        ("update", "leases/someone-elses", OPERATOR_NAMESPACE, False),
        ("update", "leases/chatcluster-operator", "default", False),
    ],
)
def test_leader_election_needs_only_its_lease(
    control_plane: ControlPlane,
    release: str,
    verb: str,
    resource: str,
    namespace: str,
    allowed: bool,
) -> None:
    result = control_plane.kubectl(
        "auth", "can-i", verb, resource, "--as", SA, "-n", namespace, check=False
    )
    assert result.stdout.strip() == ("yes" if allowed else "no"), result.stderr


@pytest.mark.parametrize(
    ("verb", "resource", "allowed"),
    [
        ("watch", "chatclusters.chatcluster.dev", True),
        ("patch", "chatclusters.chatcluster.dev/status", True),
        ("create", "deployments.apps", True),
        ("patch", "horizontalpodautoscalers.autoscaling", True),
        ("delete", "poddisruptionbudgets.policy", True),
        ("create", "jobs.batch", True),
        ("get", "secrets", True),
        ("create", "events", True),
        # and nothing more:
        ("list", "secrets", False),
        ("patch", "secrets", False),
        ("delete", "chatclusters.chatcluster.dev", False),
        ("create", "pods", False),
        ("create", "pods/exec", False),
        ("create", "clusterroles.rbac.authorization.k8s.io", False),
        ("create", "rolebindings.rbac.authorization.k8s.io", False),
        ("create", "serviceaccounts/token", False),
        ("patch", "nodes", False),
        ("update", "customresourcedefinitions.apiextensions.k8s.io", False),
    ],
)
def test_service_account_is_least_privilege(
    control_plane: ControlPlane, release: str, verb: str, resource: str, allowed: bool
) -> None:
    result = control_plane.kubectl(
        "auth", "can-i", verb, resource, "--as", SA, "--all-namespaces", check=False
    )
    assert result.stdout.strip() == ("yes" if allowed else "no"), result.stderr
