"""One reconcile pass: observe, build the desired children, apply them, prune the rest,
report status. Idempotent, so the change handlers and the drift timer can all call it.

Guarantees kept here:
- a new image reaches the Deployments only after its migration Job succeeded;
- while ``spec.paused`` is true nothing is written except status;
- a child is only pruned when it carries this ChatCluster's uid as controller owner.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chat_operator import FIELD_MANAGER
from chat_operator.builders import Cluster, Manifest, Rollout, children, migration_job
from chat_operator.builders.common import INSTANCE_LABEL, MANAGED_BY, migration_job_name
from chat_operator.kube import PRUNABLE, Kube, Obj
from chat_operator.metrics import Metrics
from chat_operator.spec import ChatClusterSpec, parse
from chat_operator.status import READY, Observed, build_status

HANDOVER_MANAGER = f"{FIELD_MANAGER}-hpa-handover"
Notify = Callable[[str, str], None]  # (reason, message) -> Kubernetes Event


@dataclass(frozen=True)
class Secrets:
    missing: list[str]
    checksum: str


def read_secrets(kube: Kube, namespace: str, spec: ChatClusterSpec) -> Secrets:
    digest = hashlib.sha256()
    missing: list[str] = []
    for ref in spec.secret_refs:
        secret = kube.get("v1", "Secret", namespace, ref.name)
        value = ((secret or {}).get("data") or {}).get(ref.key)
        if value is None:
            missing.append(f"{ref.name}/{ref.key}")
        digest.update(f"{ref.name}/{ref.key}={value}\n".encode())
    return Secrets(missing, digest.hexdigest())


def job_state(job: Obj | None) -> str:
    if job is None:
        return "Pending"
    for cond in (job.get("status") or {}).get("conditions") or ():
        if cond.get("status") == "True" and cond.get("type") in ("Complete", "SuccessCriteriaMet"):
            return "Succeeded"
        if cond.get("status") == "True" and cond.get("type") in ("Failed", "FailureTarget"):
            return "Failed"
    return "Running" if (job.get("status") or {}).get("active") else "Pending"


def owns_replicas(deployment: Obj) -> bool:
    """Whether our apply manager still owns spec.replicas (see ``_hand_over_replicas``)."""
    for entry in deployment["metadata"].get("managedFields") or ():
        if entry.get("manager") == FIELD_MANAGER and entry.get("operation") == "Apply":
            fields = entry.get("fieldsV1") or {}
            if "f:replicas" in (fields.get("f:spec") or {}):
                return True
    return False


def _owned_by(obj: Obj, uid: str) -> bool:
    return any(
        ref.get("uid") == uid and ref.get("controller")
        for ref in obj["metadata"].get("ownerReferences") or ()
    )


@dataclass
class Reconciler:
    kube: Kube
    metrics: Metrics
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    _locks: dict[str, threading.Lock] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def _lock(self, uid: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(uid, threading.Lock())

    def forget(self, uid: str) -> None:
        with self._guard:
            self._locks.pop(uid, None)

    def reconcile(self, body: Mapping[str, Any], notify: Notify) -> dict[str, Any]:
        """Serialised per object: the timer and a spec change must not interleave."""
        meta = body["metadata"]
        with self._lock(meta["uid"]), self.metrics.duration.time():
            try:
                status = self._pass(body, notify)
            except Exception:
                self.metrics.reconciles.labels("error").inc()
                raise
            self.metrics.reconciles.labels("ok").inc()
            ready = any(c["type"] == READY and c["status"] == "True" for c in status["conditions"])
            self.metrics.ready.labels(meta["namespace"], meta["name"]).set(1 if ready else 0)
            return status

    def _pass(self, body: Mapping[str, Any], notify: Notify) -> dict[str, Any]:
        meta = body["metadata"]
        # Re-read: Kopf's body may be older than the status we wrote in the previous pass.
        fresh = self.kube.get(
            "chatcluster.dev/v1alpha1", "ChatCluster", meta["namespace"], meta["name"]
        ) or dict(body)
        meta = fresh["metadata"]
        previous: dict[str, Any] = dict(fresh.get("status") or {})
        cluster = Cluster(meta["name"], meta["namespace"], meta["uid"], parse(fresh["spec"]))
        spec = cluster.spec
        secrets = read_secrets(self.kube, cluster.namespace, spec)
        rolled: str | None = previous.get("image")
        target = spec.image
        migration = previous.get("migration") or {}
        state: str | None = None
        job_name: str | None = None
        image_for_rollout = rolled

        if not spec.migrations.enabled:
            image_for_rollout = target
        elif migration.get("image") == target and migration.get("state") == "Succeeded":
            image_for_rollout, state, job_name = target, "Succeeded", migration.get("job")
        else:
            job_name = migration_job_name(cluster, target)
            job = self.kube.get("batch/v1", "Job", cluster.namespace, job_name)
            state = job_state(job)
            writable = not spec.paused and not secrets.missing
            if job is None and writable:
                rollout = Rollout(rolled, secrets.checksum, False)
                self.kube.apply(migration_job(cluster, target, rollout))
                self.metrics.changes.labels("Job", "created").inc()
                notify("MigrationStarted", f"Job {job_name} migrates for {target}")
            if state == "Succeeded":
                image_for_rollout = target
                if rolled != target:
                    notify("MigrationSucceeded", f"Job {job_name} succeeded; rolling out {target}")
            elif state == "Failed" and migration.get("state") != "Failed":
                notify("MigrationFailed", f"Job {job_name} failed; staying on {rolled}")

        if secrets.missing and rolled is None:
            image_for_rollout = None  # nothing could start without its credentials
        rollout = Rollout(
            image=image_for_rollout,
            secrets_checksum=secrets.checksum,
            service_monitor_available=spec.monitoring.service_monitor
            and self.kube.serves("monitoring.coreos.com/v1", "ServiceMonitor"),
        )
        desired = children(cluster, rollout)
        if spec.paused:
            deployments = {
                d["metadata"]["name"]: d
                for d in self.kube.list(
                    "apps/v1", "Deployment", cluster.namespace, self._selector(cluster)
                )
            }
        else:
            deployments = self._apply_all(cluster, desired, job_name, notify)

        observed = Observed(
            generation=int(meta.get("generation", 0)),
            deployments=deployments,
            missing_secrets=secrets.missing,
            migration_state=state,
            migration_job=job_name,
            target_image=target,
            rolled_image=image_for_rollout,
            paused=spec.paused,
            now=self.clock().strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        status = build_status(cluster, observed, previous)
        if {k: previous.get(k) for k in status} != status:
            self.kube.patch_status(cluster.namespace, cluster.name, status)
        return status

    @staticmethod
    def _selector(cluster: Cluster) -> str:
        return f"{INSTANCE_LABEL}={cluster.name},app.kubernetes.io/managed-by={MANAGED_BY}"

    def _apply_all(
        self, cluster: Cluster, desired: list[Manifest], keep_job: str | None, notify: Notify
    ) -> dict[str, Obj]:
        # List items carry no apiVersion/kind, so remember which collection each came from.
        existing: dict[tuple[str, str], tuple[str, Obj]] = {}
        for api_version, kind in PRUNABLE:
            if kind == "ServiceMonitor" and not self.kube.serves(api_version, kind):
                continue
            for obj in self.kube.list(
                api_version, kind, cluster.namespace, self._selector(cluster)
            ):
                if _owned_by(obj, cluster.uid):
                    existing[(kind, obj["metadata"]["name"])] = (api_version, obj)

        hpa_min = {
            m["spec"]["scaleTargetRef"]["name"]: int(m["spec"]["minReplicas"])
            for m in desired
            if m["kind"] == "HorizontalPodAutoscaler"
        }
        deployments: dict[str, Obj] = {}
        for manifest in desired:
            kind, name = manifest["kind"], manifest["metadata"]["name"]
            _, before = existing.pop((kind, name), ("", None))
            if kind == "Deployment" and "replicas" not in manifest["spec"]:
                if before is None:
                    # Start an autoscaled Deployment at the HPA's floor, not the default of 1;
                    # the next pass hands the field over to the HPA.
                    spec = {**manifest["spec"], "replicas": hpa_min.get(name, 1)}
                    manifest = {**manifest, "spec": spec}
                else:
                    self._hand_over_replicas(before)
            after = self.kube.apply(manifest)
            if kind == "Deployment":
                deployments[name] = after
            if before is None:
                self.metrics.changes.labels(kind, "created").inc()
                notify("Created", f"created {kind} {name}")
            elif after["metadata"]["resourceVersion"] != before["metadata"]["resourceVersion"]:
                self.metrics.changes.labels(kind, "updated").inc()
                notify("Updated", f"updated {kind} {name} to match the spec")

        for (kind, name), (api_version, obj) in existing.items():
            if kind == "Job" and (name == keep_job or job_state(obj) != "Succeeded"):
                continue  # never kill a running migration
            self.kube.delete(api_version, kind, cluster.namespace, name)
            self.metrics.changes.labels(kind, "pruned").inc()
            notify("Pruned", f"deleted {kind} {name}: no longer in the spec")
        return deployments

    def _hand_over_replicas(self, deployment: Obj) -> None:
        """Switching a component to autoscaling: simply dropping ``replicas`` from our apply
        would reset it to 1 (SSA removes fields only we owned). A second manager first
        co-owns the current value, so our next apply releases it to the HPA unchanged."""
        if not owns_replicas(deployment):
            return
        meta = deployment["metadata"]
        self.kube.apply(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
                "spec": {"replicas": deployment["spec"].get("replicas", 1)},
            },
            manager=HANDOVER_MANAGER,
        )
