"""When something goes wrong, kubectl says so: a refused child becomes a Warning Event and
Degraded/Ready conditions naming it, the other children are still applied, status does not
claim a generation it could not apply, and an object the ChatCluster does not own is never
taken over (docs/operator.md, "When things go wrong")."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from chat_operator.builders.common import METRICS_PORT, METRICS_PORT_NAME

from tests.k8s.cluster_helpers import (
    BOUND,
    apply_example,
    cluster,
    deployment,
    wait_ready,
)
from tests.k8s.controlplane import ControlPlane, wait_for
from tests.k8s.fake_kubelet import FakeKubelet
from tests.k8s.operator_process import OperatorProcess
from tests.k8s.support import condition

pytestmark = pytest.mark.k8s

# A ValidatingAdmissionPolicy that refuses one child (the ws Service) in one namespace: a
# stand-in for any admission refusal (a policy engine, a quota, a webhook).
POLICY = """
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {{name: deny-ws-{ns}}}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - apiGroups: [""]
        apiVersions: [v1]
        operations: [CREATE, UPDATE]
        resources: [services]
  validations:
    - expression: "object.metadata.name != 'chat-ws'"
      message: "policy forbids Service chat-ws in this namespace"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {{name: deny-ws-{ns}}}
spec:
  policyName: deny-ws-{ns}
  validationActions: [Deny]
  matchResources:
    namespaceSelector:
      matchLabels: {{kubernetes.io/metadata.name: {ns}}}
"""


def warnings(plane: ControlPlane, ns: str, reason: str | None = None) -> list[dict[str, Any]]:
    selector = "involvedObject.kind=ChatCluster,type=Warning"
    if reason:
        selector += f",reason={reason}"
    items: list[dict[str, Any]] = plane.get_json("events", "-n", ns, "--field-selector", selector)[
        "items"
    ]
    return items


def printed_columns(table: str) -> dict[str, str]:
    """`kubectl get` output by header, cut at the header's column starts (empty cells are
    blank, so splitting on whitespace would shift them)."""
    header, row = table.splitlines()[:2]
    starts = [m.start() for m in re.finditer(r"\S+", header)] + [len(row) + 1]
    names = header.split()
    return {n: row[a:b].strip() for n, a, b in zip(names, starts, starts[1:], strict=False)}


def cond(plane: ControlPlane, ns: str, kind: str) -> dict[str, Any]:
    return condition(cluster(plane, ns, "chat"), kind) or {}


def test_refused_child_is_reported_and_the_rest_applied(
    control_plane: ControlPlane, operator: OperatorProcess, kubelet: FakeKubelet, namespace: str
) -> None:
    ns = namespace
    control_plane.kubectl("apply", "-f", "-", stdin=POLICY.format(ns=ns))
    # The policy is enforced once the apiserver's informer has it: probe with a dry run.
    wait_for(
        "policy enforced",
        lambda: (
            "policy forbids"
            in control_plane.kubectl(
                "create",
                "service",
                "clusterip",
                "chat-ws",
                "--tcp=80",
                "-n",
                ns,
                "--dry-run=server",
                check=False,
            ).stderr
        ),
        BOUND,
    )
    try:
        apply_example(control_plane, ns, "chatcluster-minimal.yaml")

        def reported() -> dict[str, Any] | None:
            degraded = cond(control_plane, ns, "Degraded")
            return degraded if degraded.get("reason") == "ApplyFailed" else None

        degraded = wait_for("Degraded=ApplyFailed", reported, BOUND)
        assert degraded["status"] == "True"
        assert "Service chat-ws" in degraded["message"]
        assert "policy forbids Service chat-ws" in degraded["message"]
        obj = cluster(control_plane, ns, "chat")
        assert condition(obj, "Ready")["status"] == "False"  # type: ignore[index]
        assert obj["status"]["phase"] == "Degraded"
        # Honest generation: nothing has fully applied generation 1, and `kubectl get` shows it.
        assert obj["status"].get("observedGeneration", 0) < obj["metadata"]["generation"]
        table = control_plane.kubectl("get", "chatcluster", "chat", "-n", ns, "-o", "wide").stdout
        columns = printed_columns(table)
        assert columns["READY"] == "False"
        assert columns["GEN"] == "1"
        assert columns["OBSERVED"] in ("0", "<none>")
        assert columns["REASON"] == "ApplyFailed"
        # The other children went ahead: one bad child does not block the rest.
        wait_for("api Deployment", lambda: deployment(control_plane, ns, "chat-api"), BOUND)
        assert control_plane.try_get("service", "chat-api", "-n", ns) is not None
        assert control_plane.try_get("configmap", "chat-config", "-n", ns) is not None
        events = wait_for(
            "Warning Event", lambda: warnings(control_plane, ns, "ApplyFailed"), BOUND
        )
        assert any(
            "Service chat-ws" in e["message"] and "policy forbids" in e["message"] for e in events
        )
        # The operator's log names the ChatCluster on the same line.
        assert any(
            f"[{ns}/chat]" in line and "Service chat-ws" in line
            for line in operator.full_log().splitlines()
        )
    finally:
        control_plane.kubectl(
            "delete",
            "validatingadmissionpolicybinding,validatingadmissionpolicy",
            f"deny-ws-{ns}",
            check=False,
        )
    obj = wait_ready(control_plane, ns, "chat")
    assert condition(obj, "Degraded")["status"] == "False"  # type: ignore[index]
    assert control_plane.try_get("service", "chat-ws", "-n", ns) is not None


def test_foreign_object_with_a_child_name_is_never_adopted(
    control_plane: ControlPlane, operator: OperatorProcess, kubelet: FakeKubelet, namespace: str
) -> None:
    ns = namespace
    control_plane.kubectl(
        "create", "configmap", "chat-config", "-n", ns, "--from-literal=MINE=keep"
    )
    apply_example(control_plane, ns, "chatcluster-minimal.yaml")

    def conflict() -> dict[str, Any] | None:
        found = cond(control_plane, ns, "Conflict")
        return found if found.get("status") == "True" else None

    found = wait_for("Conflict=True", conflict, BOUND)
    assert "ConfigMap chat-config" in found["message"]
    assert cond(control_plane, ns, "Degraded")["reason"] == "Conflict"
    assert cond(control_plane, ns, "Ready")["status"] == "False"
    assert any("ConfigMap chat-config" in e["message"] for e in warnings(control_plane, ns))
    mine = control_plane.get_json("configmap", "chat-config", "-n", ns)
    assert mine["data"] == {"MINE": "keep"}
    assert not mine["metadata"].get("ownerReferences")
    # Deleting the ChatCluster leaves the user's ConfigMap alone.
    control_plane.kubectl("delete", "chatcluster", "chat", "-n", ns, "--timeout=60s")
    wait_for(
        "children garbage-collected",
        lambda: control_plane.try_get("service", "chat-api", "-n", ns) is None,
        BOUND,
    )
    assert control_plane.get_json("configmap", "chat-config", "-n", ns)["data"] == {"MINE": "keep"}


def test_foreign_edits_of_owned_fields_converge(
    control_plane: ControlPlane, operator: OperatorProcess, kubelet: FakeKubelet, namespace: str
) -> None:
    ns = namespace
    apply_example(control_plane, ns, "chatcluster-minimal.yaml")
    wait_ready(control_plane, ns, "chat")
    # As `kubectl edit` would: the port's value changed, its name kept.
    control_plane.kubectl(
        "patch",
        "service",
        "chat-ws",
        "-n",
        ns,
        "--type=json",
        "-p",
        json.dumps([{"op": "replace", "path": "/spec/ports/0/port", "value": 8181}]),
    )
    control_plane.kubectl(
        "patch",
        "configmap",
        "chat-config",
        "-n",
        ns,
        "--type=merge",
        "-p",
        json.dumps({"data": {"CHAT_INJECTED": "evil"}}),
    )

    def repaired() -> bool:
        svc = control_plane.get_json("service", "chat-ws", "-n", ns)
        data = control_plane.get_json("configmap", "chat-config", "-n", ns)["data"]
        ports = [(p["name"], p["port"]) for p in svc["spec"]["ports"]]
        return ports == [("ws", 80), (METRICS_PORT_NAME, METRICS_PORT)] and (
            "CHAT_INJECTED" not in data
        )

    wait_for("Service port and ConfigMap keys restored", repaired, 30)
    obj = wait_ready(control_plane, ns, "chat")
    assert condition(obj, "Degraded")["status"] == "False"  # type: ignore[index]
    assert not warnings(control_plane, ns, "ApplyFailed")
