"""One reconcile pass: observe, build the desired children, write them, report status.
Idempotent, so child events, spec changes and the resync can all trigger it.

Guarantees kept here:
- a new image reaches the Deployments only after its migration Job succeeded;
- while ``spec.paused`` is true nothing is written except status;
- every pass ends with an honest status: a pass whose children could not all be written
  says so (``Degraded=True``, ``Ready=False``, a ``Warning`` Event per problem) and keeps
  ``status.observedGeneration`` at the last generation that was fully applied; a pass that
  fails outright (the API refused a read) still reports ``Ready=False``/``Degraded=True``
  with the API's message, then the work queue retries it with backoff.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chat_operator.builders import Cluster, Rollout, children, migration_job
from chat_operator.builders.common import migration_job_name
from chat_operator.children import ChildWriter, conflict, job_state, owned_by, selector
from chat_operator.events import NORMAL, WARNING, Notify, Recorder
from chat_operator.kube import CLUSTER_API_VERSION, Kube, Obj
from chat_operator.logs import for_cluster
from chat_operator.metrics import Metrics
from chat_operator.problems import APPLY_FAILED, CONFLICT, Problem
from chat_operator.settings import OperatorSettings
from chat_operator.spec import ChatClusterSpec, parse
from chat_operator.status import READY, Observed, build_status, failed_status

# Discovery of the ServiceMonitor CRD is re-checked at most this often (seconds).
DISCOVERY_TTL = 60.0


@dataclass(frozen=True)
class Secrets:
    missing: list[str]
    checksum: str


def read_secrets(kube: Kube, namespace: str, spec: ChatClusterSpec) -> Secrets:
    """Raises on anything but 404: a checksum over values we could not read would roll
    every pod."""
    digest = hashlib.sha256()
    missing: list[str] = []
    for ref in spec.secret_refs:
        secret = kube.get("v1", "Secret", namespace, ref.name)
        value = ((secret or {}).get("data") or {}).get(ref.key)
        if value is None:
            missing.append(f"{ref.name}/{ref.key}")
        digest.update(f"{ref.name}/{ref.key}={value}\n".encode())
    return Secrets(missing, digest.hexdigest())


def _stamp(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Reconciler:
    kube: Kube
    metrics: Metrics
    recorder: Recorder
    settings: OperatorSettings = field(default_factory=OperatorSettings)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    _discovered: dict[tuple[str, str], tuple[float, bool]] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def forget(self, uid: str, namespace: str, name: str) -> None:
        """The ChatCluster is gone: drop its Event history and its readiness gauge."""
        self.recorder.forget(uid)
        with contextlib.suppress(KeyError):
            self.metrics.ready.remove(namespace, name)

    def serves(self, api_version: str, kind: str) -> bool:
        now = time.monotonic()
        with self._guard:
            cached = self._discovered.get((api_version, kind))
        if cached is not None and now - cached[0] < DISCOVERY_TTL:
            return cached[1]
        found = self.kube.serves(api_version, kind)
        with self._guard:
            self._discovered[(api_version, kind)] = (now, found)
        return found

    def reconcile(self, namespace: str, name: str) -> dict[str, Any] | None:
        """One pass for one ChatCluster; None if it no longer exists. Raises after reporting
        a failure, so the caller (the work queue) retries with backoff."""
        logger = for_cluster(namespace, name)
        with self.metrics.duration.time():
            try:
                fresh = self.kube.get(CLUSTER_API_VERSION, "ChatCluster", namespace, name)
            except Exception as exc:
                self.metrics.reconciles.labels("error").inc()
                logger.error("cannot read the ChatCluster: %s", Kube.describe(exc))
                raise
            if fresh is None:
                return None
            notify = self.recorder.for_object(fresh)
            try:
                status = self._pass(fresh, notify)
            except Exception as exc:
                self.metrics.reconciles.labels("error").inc()
                self._report_failure(fresh, exc, notify)
                raise
        failed = [
            c for c in status["conditions"] if c["type"] == "Degraded" and c["status"] == "True"
        ]
        self.metrics.reconciles.labels("degraded" if failed else "ok").inc()
        ready = any(c["type"] == READY and c["status"] == "True" for c in status["conditions"])
        self.metrics.ready.labels(namespace, name).set(1 if ready else 0)
        return status

    def _report_failure(self, fresh: Obj, exc: BaseException, notify: Notify) -> None:
        message = Kube.describe(exc)
        notify(WARNING, "ReconcileFailed", message)
        meta = fresh["metadata"]
        status = failed_status(
            dict(fresh.get("status") or {}),
            int(meta.get("generation", 0)),
            _stamp(self.clock()),
            f"reconcile failed: {message}",
        )
        try:
            self.kube.patch_status(meta["namespace"], meta["name"], status)
        except Exception as second:
            for_cluster(meta["namespace"], meta["name"]).error(
                "could not report the failure in status: %s", Kube.describe(second)
            )

    def _pass(self, fresh: Obj, notify: Notify) -> dict[str, Any]:
        meta = fresh["metadata"]
        previous: dict[str, Any] = dict(fresh.get("status") or {})
        cluster = Cluster(meta["name"], meta["namespace"], meta["uid"], parse(fresh["spec"]))
        spec = cluster.spec
        secrets = read_secrets(self.kube, cluster.namespace, spec)
        problems: list[Problem] = []
        rolled: str | None = previous.get("image")
        target = spec.image_reference
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
            if job is not None and not owned_by(job, cluster.uid):
                # Someone else's Job: its outcome says nothing about our migration.
                problems.append(Problem("Job", job_name, CONFLICT, conflict(job, cluster)))
                job, blocked = None, True
            else:
                blocked = False
            state = job_state(job)
            writable = not spec.paused and not secrets.missing and not blocked
            if job is None and writable:
                try:
                    self.kube.apply(
                        migration_job(cluster, target, Rollout(rolled, secrets.checksum, False))
                    )
                except Exception as exc:
                    problems.append(Problem("Job", job_name, APPLY_FAILED, Kube.describe(exc)))
                else:
                    self.metrics.changes.labels("Job", "created").inc()
                    notify(NORMAL, "MigrationStarted", f"Job {job_name} migrates for {target}")
            if state == "Succeeded":
                image_for_rollout = target
                if rolled != target:
                    notify(
                        NORMAL,
                        "MigrationSucceeded",
                        f"Job {job_name} succeeded; rolling out {target}",
                    )
            elif state == "Failed" and migration.get("state") != "Failed":
                notify(WARNING, "MigrationFailed", f"Job {job_name} failed; staying on {rolled}")

        if secrets.missing and rolled is None:
            image_for_rollout = None  # nothing could start without its credentials
        rollout = Rollout(
            image=image_for_rollout,
            secrets_checksum=secrets.checksum,
            service_monitor_available=spec.monitoring.service_monitor.enabled
            and self.serves("monitoring.coreos.com/v1", "ServiceMonitor"),
            prometheus_rule_available=spec.monitoring.service_monitor.enabled
            and self.serves("monitoring.coreos.com/v1", "PrometheusRule"),
            runbook_base_url=self.settings.runbook_base_url,
        )
        desired = children(cluster, rollout)
        if spec.paused:
            deployments = {
                d["metadata"]["name"]: d
                for d in self.kube.list(
                    "apps/v1", "Deployment", cluster.namespace, selector(cluster)
                )
            }
        else:
            writer = ChildWriter(self.kube, self.metrics, cluster, notify, self.serves)
            outcome = writer.write(desired, job_name)
            deployments = outcome.deployments
            problems += outcome.problems
        for problem in problems:
            notify(WARNING, problem.reason, problem.describe())

        observed = Observed(
            generation=int(meta.get("generation", 0)),
            deployments=deployments,
            missing_secrets=secrets.missing,
            migration_state=state,
            migration_job=job_name,
            target_image=target,
            rolled_image=image_for_rollout,
            paused=spec.paused,
            now=_stamp(self.clock()),
            problems=tuple(problems),
        )
        status = build_status(cluster, observed, previous)
        if {k: previous.get(k) for k in status} != status:
            self.kube.patch_status(cluster.namespace, cluster.name, status)
        return status
