"""Status as a pure function of what the reconciler observed.

Conditions follow the metav1.Condition convention: ``lastTransitionTime`` only moves when
``status`` flips, so watchers can tell how long a cluster has been (not) Ready.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chat_operator.builders import network
from chat_operator.builders.common import Cluster, api_name, worker_name, ws_name
from chat_operator.problems import CONFLICT, Problem

READY = "Ready"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"
DEPENDENCIES_READY = "DependenciesReady"
CONFLICT_CONDITION = "Conflict"
# Condition messages are for humans in `kubectl describe`; the schema allows 32 KiB.
MESSAGE_MAX = 4096


@dataclass(frozen=True)
class Observed:
    """What the reconciler saw in the cluster during one pass."""

    generation: int
    deployments: Mapping[str, Mapping[str, Any]]
    missing_secrets: Sequence[str]
    migration_state: str | None  # Pending/Running/Succeeded/Failed, None when disabled
    migration_job: str | None
    target_image: str
    rolled_image: str | None
    paused: bool
    now: str
    problems: Sequence[Problem] = ()


@dataclass(frozen=True)
class Counts:
    desired: int
    ready: int
    updated: int
    available: int
    stalled: bool  # ProgressDeadlineExceeded: a real problem, reported as Degraded
    lagging: bool = False  # controller has not seen the latest spec yet: transient
    failure: str | None = None

    def as_status(self) -> dict[str, Any]:
        return {
            "desired": self.desired,
            "ready": self.ready,
            "updated": self.updated,
            "available": self.available,
            "summary": f"{self.ready}/{self.desired}",
        }

    @property
    def done(self) -> bool:
        done = self.ready >= self.desired and self.updated >= self.desired
        return done and not self.stalled and not self.lagging


def counts(deployment: Mapping[str, Any] | None) -> Counts:
    """Replica counts of one Deployment; a Deployment whose controller has not caught up with
    its latest spec (observedGeneration lag) is never counted as done."""
    if deployment is None:
        return Counts(0, 0, 0, 0, stalled=False, lagging=True)
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    meta = deployment.get("metadata") or {}
    desired = int(spec.get("replicas", 1))
    lagging = int(status.get("observedGeneration", 0)) < int(meta.get("generation", 1))
    conditions = status.get("conditions") or ()
    stuck = any(
        c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded"
        for c in conditions
    )
    # e.g. pods refused by admission (quota, a missing PriorityClass): say why, not just 0/3.
    failure = next(
        (
            str(c.get("message", ""))
            for c in conditions
            if c.get("type") == "ReplicaFailure" and c.get("status") == "True"
        ),
        None,
    )
    return Counts(
        desired=desired,
        ready=int(status.get("readyReplicas", 0)),
        updated=int(status.get("updatedReplicas", 0)),
        available=int(status.get("availableReplicas", 0)),
        stalled=stuck,
        lagging=lagging,
        failure=failure,
    )


def _condition(
    previous: Mapping[str, Mapping[str, Any]],
    kind: str,
    ok: bool,
    reason: str,
    message: str,
    observed: Observed,
) -> dict[str, Any]:
    status = "True" if ok else "False"
    before = previous.get(kind)
    moved = before is None or before.get("status") != status
    return {
        "type": kind,
        "status": status,
        "observedGeneration": observed.generation,
        "lastTransitionTime": observed.now if moved else before["lastTransitionTime"],  # type: ignore[index]
        "reason": reason,
        "message": message[:MESSAGE_MAX],
    }


def build_status(
    cluster: Cluster, observed: Observed, previous: Mapping[str, Any]
) -> dict[str, Any]:
    spec = cluster.spec
    components = {
        "api": counts(observed.deployments.get(api_name(cluster))),
        "websocket": counts(observed.deployments.get(ws_name(cluster))),
    }
    workers = {
        pool.name: counts(observed.deployments.get(worker_name(cluster, pool.name)))
        for pool in spec.workers
    }
    named = {**components, **{f"worker {n}": c for n, c in workers.items()}}
    all_counts = list(named.values())
    rolled = observed.rolled_image == observed.target_image
    deps_ok = not observed.missing_secrets
    migration_failed = observed.migration_state == "Failed"
    migrating = observed.migration_state in ("Pending", "Running")
    stalled = [c for c in all_counts if c.stalled]
    workloads_done = all(c.done for c in all_counts)
    conflicts = [p for p in observed.problems if p.reason == CONFLICT]
    failures = [p for p in observed.problems if p.reason != CONFLICT]
    ready = deps_ok and rolled and workloads_done and not migration_failed
    ready = ready and not observed.problems

    if not deps_ok:
        dep_reason, dep_msg = "SecretMissing", "missing: " + ", ".join(observed.missing_secrets)
    else:
        dep_reason, dep_msg = "SecretsFound", "all referenced Secret keys exist"

    if conflicts:
        degraded = (True, "Conflict", "; ".join(p.describe() for p in conflicts))
    elif failures:
        degraded = (True, "ApplyFailed", "; ".join(p.describe() for p in failures))
    elif migration_failed:
        degraded = (True, "MigrationFailed", f"migration Job {observed.migration_job} failed")
    elif replica_failures := [f"{n}: {c.failure}" for n, c in named.items() if c.failure]:
        degraded = (True, "ReplicaFailure", "; ".join(replica_failures))
    elif stalled:
        degraded = (True, "RolloutStalled", "a Deployment exceeded its progress deadline")
    else:
        degraded = (False, "AsExpected", "no failures observed")

    if observed.paused:
        progressing = (False, "Paused", "spec.paused is true; children are left as they are")
    elif migrating:
        progressing = (True, "Migrating", f"waiting for migration Job {observed.migration_job}")
    elif not workloads_done or not rolled:
        progressing = (True, "RollingOut", "Deployments are rolling out")
    else:
        progressing = (False, "Complete", "all Deployments are up to date")

    if ready:
        ready_c = (True, "AllReplicasReady", "all components are ready")
    elif observed.problems:
        ready_c = (False, degraded[1], degraded[2])
    elif not deps_ok:
        ready_c = (False, "DependenciesNotReady", dep_msg)
    elif migrating or (migration_failed and not rolled):
        ready_c = (False, "MigrationPending", "the new version waits for its migration")
    else:
        not_ready = [n for n, c in {**components, **workers}.items() if not c.done]
        ready_c = (False, "ReplicasNotReady", "not ready: " + ", ".join(not_ready))

    if observed.paused:
        phase = "Paused"
    elif degraded[0]:
        phase = "Degraded"
    elif not deps_ok:
        phase = "Pending"
    elif migrating:
        phase = "Migrating"
    elif ready:
        phase = "Ready"
    else:
        phase = "Progressing"

    if conflicts:
        conflict_c = (True, "ObjectExists", "; ".join(p.describe() for p in conflicts))
    else:
        conflict_c = (False, "NoConflict", "every child is owned by this ChatCluster")

    prev_conditions = {c["type"]: c for c in previous.get("conditions") or ()}
    conditions = [
        _condition(prev_conditions, READY, ready_c[0], ready_c[1], ready_c[2], observed),
        _condition(prev_conditions, PROGRESSING, *progressing, observed),
        _condition(prev_conditions, DEGRADED, *degraded, observed),
        _condition(prev_conditions, DEPENDENCIES_READY, deps_ok, dep_reason, dep_msg, observed),
        _condition(prev_conditions, CONFLICT_CONDITION, *conflict_c, observed),
    ]
    status: dict[str, Any] = {
        # The generation whose spec every child now reflects: a pass with problems leaves it
        # at the last fully applied generation, so GEN != OBSERVED in `kubectl get` shows
        # that status lags the spec. The conditions carry the generation they judged.
        "observedGeneration": previous.get("observedGeneration", 0)
        if observed.problems
        else observed.generation,
        "phase": phase,
        "conditions": conditions,
        "components": {
            "api": components["api"].as_status(),
            "websocket": components["websocket"].as_status(),
            "workers": [{"name": n, **c.as_status()} for n, c in workers.items()],
        },
        "endpoints": network.endpoints(cluster),
    }
    if observed.rolled_image is not None:
        status["image"] = observed.rolled_image
        status["version"] = spec.version if rolled else previous.get("version", spec.version)
    if observed.migration_job is not None and observed.migration_state is not None:
        status["migration"] = {
            "image": observed.target_image,
            "job": observed.migration_job,
            "state": observed.migration_state,
        }
    return status


def failed_status(
    previous: Mapping[str, Any], generation: int, now: str, message: str
) -> dict[str, Any]:
    """Status after a pass that failed outright (e.g. a read was refused): everything else is
    left as it was, but nobody may believe it is Ready."""
    observed = Observed(
        generation=generation,
        deployments={},
        missing_secrets=(),
        migration_state=None,
        migration_job=None,
        target_image="",
        rolled_image=None,
        paused=False,
        now=now,
    )
    prev_conditions = {c["type"]: c for c in previous.get("conditions") or ()}
    replaced = {
        READY: _condition(prev_conditions, READY, False, "ReconcileFailed", message, observed),
        DEGRADED: _condition(prev_conditions, DEGRADED, True, "ReconcileFailed", message, observed),
    }
    kept = [c for c in previous.get("conditions") or () if c["type"] not in replaced]
    return {
        **{k: v for k, v in previous.items() if k != "conditions"},
        "phase": "Degraded",
        "conditions": [*replaced.values(), *kept],
    }
