"""Status is a pure function of what the reconciler observed."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from chat_operator.builders import Cluster
from chat_operator.problems import APPLY_FAILED, CONFLICT, Problem
from chat_operator.status import Observed, build_status, failed_status

IMAGE = "ghcr.io/chatcluster/chatcluster:1.0.0"


def dep(
    replicas: int, ready: int, updated: int | None = None, generation: int = 1, observed: int = 1
) -> dict[str, Any]:
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": observed,
            "readyReplicas": ready,
            "updatedReplicas": ready if updated is None else updated,
            "availableReplicas": ready,
        },
    }


def observed(**changes: Any) -> Observed:
    base = Observed(
        generation=3,
        deployments={"chat-api": dep(2, 2), "chat-ws": dep(2, 2)},
        missing_secrets=[],
        migration_state="Succeeded",
        migration_job="chat-migrate-x",
        target_image=IMAGE,
        rolled_image=IMAGE,
        paused=False,
        now="2026-01-01T00:00:00Z",
    )
    return replace(base, **changes)


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def test_all_ready(minimal: Cluster) -> None:
    status = build_status(minimal, observed(), {})
    assert status["phase"] == "Ready"
    assert status["observedGeneration"] == 3
    assert status["version"] == "1.0.0"
    assert conditions(status) == {
        "Ready": ("True", "AllReplicasReady"),
        "Progressing": ("False", "Complete"),
        "Degraded": ("False", "AsExpected"),
        "DependenciesReady": ("True", "SecretsFound"),
        "Conflict": ("False", "NoConflict"),
    }
    assert status["components"]["api"]["summary"] == "2/2"


def test_rolling_out_until_replicas_ready(minimal: Cluster) -> None:
    status = build_status(
        minimal, observed(deployments={"chat-api": dep(2, 1), "chat-ws": dep(2, 2)}), {}
    )
    assert status["phase"] == "Progressing"
    assert conditions(status)["Ready"] == ("False", "ReplicasNotReady")
    assert "api" in status["conditions"][0]["message"]


def test_deployment_controller_lag_is_not_ready(minimal: Cluster) -> None:
    lagging = dep(2, 2, generation=2, observed=1)
    status = build_status(
        minimal, observed(deployments={"chat-api": lagging, "chat-ws": dep(2, 2)}), {}
    )
    assert conditions(status)["Ready"][0] == "False"


def test_migration_in_flight_keeps_old_version(minimal: Cluster) -> None:
    status = build_status(
        minimal,
        observed(migration_state="Running", target_image="repo:1.1.0", rolled_image=IMAGE),
        {"version": "1.0.0"},
    )
    assert status["phase"] == "Migrating"
    assert status["version"] == "1.0.0"
    assert conditions(status)["Progressing"] == ("True", "Migrating")
    assert conditions(status)["Ready"] == ("False", "MigrationPending")


def test_failed_migration_is_degraded(minimal: Cluster) -> None:
    status = build_status(
        minimal, observed(migration_state="Failed", target_image="repo:1.1.0"), {"version": "1.0.0"}
    )
    assert status["phase"] == "Degraded"
    assert conditions(status)["Degraded"] == ("True", "MigrationFailed")


def test_missing_secret(minimal: Cluster) -> None:
    status = build_status(
        minimal,
        observed(missing_secrets=["chat-jwt/jwt-secret"], deployments={}, rolled_image=None),
        {},
    )
    assert status["phase"] == "Pending"
    assert conditions(status)["DependenciesReady"] == ("False", "SecretMissing")
    assert "image" not in status


def test_paused(minimal: Cluster) -> None:
    status = build_status(minimal, observed(paused=True), {})
    assert status["phase"] == "Paused"
    assert conditions(status)["Progressing"] == ("False", "Paused")


def test_transition_time_moves_only_on_flip(minimal: Cluster) -> None:
    first = build_status(minimal, observed(), {})
    later = build_status(minimal, observed(now="2026-01-01T01:00:00Z"), first)
    assert later == first  # nothing changed: no status write needed
    flipped = build_status(
        minimal,
        observed(
            now="2026-01-01T02:00:00Z", deployments={"chat-api": dep(2, 0), "chat-ws": dep(2, 2)}
        ),
        first,
    )
    times = {c["type"]: c["lastTransitionTime"] for c in flipped["conditions"]}
    assert times["Ready"] == "2026-01-01T02:00:00Z"
    assert times["Degraded"] == "2026-01-01T00:00:00Z"


def test_replica_failure_is_degraded_with_the_reason(minimal: Cluster) -> None:
    refused = dep(3, 0)
    refused["status"]["conditions"] = [
        {
            "type": "ReplicaFailure",
            "status": "True",
            "reason": "FailedCreate",
            "message": "no PriorityClass with name chat-critical was found",
        },
    ]
    status = build_status(
        minimal, observed(deployments={"chat-api": refused, "chat-ws": dep(2, 2)}), {}
    )
    assert status["phase"] == "Degraded"
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert degraded["reason"] == "ReplicaFailure"
    assert "api: no PriorityClass with name chat-critical" in degraded["message"]


def test_controller_lag_is_progress_not_degradation(minimal: Cluster) -> None:
    lagging = dep(2, 2, generation=5, observed=4)
    status = build_status(minimal, observed(deployments={"chat-api": lagging, "chat-ws": None}), {})
    assert conditions(status)["Degraded"] == ("False", "AsExpected")
    assert conditions(status)["Ready"][0] == "False"
    assert status["phase"] == "Progressing"


def test_a_refused_child_is_degraded_not_ready_and_generation_not_observed(
    minimal: Cluster,
) -> None:
    first = build_status(minimal, observed(generation=3), {})
    refused = Problem(
        "Service", "chat-ws", APPLY_FAILED, 'spec.ports[1].name: Duplicate value: "ws"'
    )
    status = build_status(minimal, observed(generation=4, problems=(refused,)), first)
    assert conditions(status)["Ready"] == ("False", "ApplyFailed")
    assert conditions(status)["Degraded"] == ("True", "ApplyFailed")
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert degraded["message"] == (
        'Service chat-ws: apply failed: spec.ports[1].name: Duplicate value: "ws"'
    )
    assert degraded["observedGeneration"] == 4  # the conditions judged generation 4 ...
    assert status["observedGeneration"] == 3  # ... which is not fully applied
    assert status["phase"] == "Degraded"


def test_a_foreign_object_is_a_conflict(minimal: Cluster) -> None:
    taken = Problem("ConfigMap", "chat-config", CONFLICT, "already exists and is not ours")
    status = build_status(minimal, observed(problems=(taken,)), {})
    assert conditions(status)["Conflict"] == ("True", "ObjectExists")
    assert conditions(status)["Degraded"] == ("True", "Conflict")
    assert "ConfigMap chat-config" in status["conditions"][-1]["message"]
    assert "observedGeneration" in status and status["observedGeneration"] == 0


def test_a_failed_pass_keeps_status_but_is_not_ready(minimal: Cluster) -> None:
    ready = build_status(minimal, observed(), {})
    failed = failed_status(ready, 4, "2026-01-01T05:00:00Z", "reconcile failed: 403 forbidden")
    assert conditions(failed)["Ready"] == ("False", "ReconcileFailed")
    assert conditions(failed)["Degraded"] == ("True", "ReconcileFailed")
    assert conditions(failed)["DependenciesReady"] == ("True", "SecretsFound")
    assert failed["observedGeneration"] == ready["observedGeneration"]
    assert failed["components"] == ready["components"]
    times = {c["type"]: c["lastTransitionTime"] for c in failed["conditions"]}
    assert times["Ready"] == "2026-01-01T05:00:00Z"
