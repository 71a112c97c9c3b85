"""Writing one ChatCluster's children: ownership first, then drift repair, then server-side
apply only where something would change, then pruning.

Guarantees kept here:
- an object is only written if it does not exist or carries this ChatCluster's uid as
  controller owner; anything else with a child's name is reported as a ``Conflict`` problem
  and left untouched (forced apply would otherwise adopt it and the garbage collector would
  delete it with the ChatCluster);
- one child's failure (422, 403, a timeout) becomes a :class:`Problem`; the other children are
  still applied and pruned;
- a child is only pruned when it carries this ChatCluster's uid as controller owner, and a
  migration Job that is running or is the current one is never pruned.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chat_operator import FIELD_MANAGER
from chat_operator.builders import Cluster, Manifest
from chat_operator.builders.common import INSTANCE_LABEL, MANAGED_BY
from chat_operator.drift import repairs, stamped, up_to_date
from chat_operator.events import NORMAL, Notify
from chat_operator.kube import PRUNABLE, Kube, Obj
from chat_operator.metrics import Metrics
from chat_operator.problems import APPLY_FAILED, CONFLICT, PRUNE_FAILED, Problem

HANDOVER_MANAGER = f"{FIELD_MANAGER}-hpa-handover"


def selector(cluster: Cluster) -> str:
    return f"{INSTANCE_LABEL}={cluster.name},app.kubernetes.io/managed-by={MANAGED_BY}"


def owned_by(obj: Mapping[str, Any], uid: str) -> bool:
    return any(
        ref.get("uid") == uid and ref.get("controller")
        for ref in obj["metadata"].get("ownerReferences") or ()
    )


def conflict(obj: Mapping[str, Any], cluster: Cluster) -> str:
    owners = [
        f"{ref.get('kind')} {ref.get('name')}"
        for ref in obj["metadata"].get("ownerReferences") or ()
        if ref.get("controller")
    ]
    held = f"controlled by {owners[0]}" if owners else "not controlled by this ChatCluster"
    return (
        f"already exists and is {held}; the operator will not take it over. Rename or delete "
        f"it, or rename the ChatCluster {cluster.name}"
    )


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


@dataclass
class Outcome:
    deployments: dict[str, Obj] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


@dataclass
class ChildWriter:
    kube: Kube
    metrics: Metrics
    cluster: Cluster
    notify: Notify
    serves: Callable[[str, str], bool]

    def write(self, desired: list[Manifest], keep_job: str | None) -> Outcome:
        out = Outcome()
        owned, listed = self._owned(out)
        hpa_min = {
            m["spec"]["scaleTargetRef"]["name"]: int(m["spec"]["minReplicas"])
            for m in desired
            if m["kind"] == "HorizontalPodAutoscaler"
        }
        for manifest in desired:
            kind, name = manifest["kind"], manifest["metadata"]["name"]
            _, before = owned.pop((kind, name), ("", None))
            try:
                self._write_one(manifest, before, hpa_min, out)
            except Exception as exc:  # recorded, reported, retried; never blocks the rest
                out.problems.append(Problem(kind, name, APPLY_FAILED, Kube.describe(exc)))
        for (kind, name), (api_version, obj) in owned.items():
            if kind not in listed:
                continue
            if kind == "Job" and (name == keep_job or job_state(obj) != "Succeeded"):
                continue  # never kill a running migration
            try:
                self.kube.delete(api_version, kind, self.cluster.namespace, name)
            except Exception as exc:
                out.problems.append(Problem(kind, name, PRUNE_FAILED, Kube.describe(exc)))
                continue
            self.metrics.changes.labels(kind, "pruned").inc()
            self.notify(NORMAL, "Pruned", f"deleted {kind} {name}: no longer in the spec")
        return out

    def _owned(self, out: Outcome) -> tuple[dict[tuple[str, str], tuple[str, Obj]], set[str]]:
        """Our children by (kind, name), and the kinds whose listing succeeded (only those
        are pruned: a failed list must not look like "nothing exists")."""
        owned: dict[tuple[str, str], tuple[str, Obj]] = {}
        listed: set[str] = set()
        for api_version, kind in PRUNABLE:
            if api_version.startswith("monitoring.coreos.com/") and not self.serves(
                api_version, kind
            ):
                continue
            try:
                items = self.kube.list(
                    api_version, kind, self.cluster.namespace, selector(self.cluster)
                )
            except Exception as exc:
                out.problems.append(Problem(kind, "*", APPLY_FAILED, f"list: {Kube.describe(exc)}"))
                continue
            listed.add(kind)
            for obj in items:
                if owned_by(obj, self.cluster.uid):
                    owned[(kind, obj["metadata"]["name"])] = (api_version, obj)
        return owned, listed

    def _write_one(
        self, manifest: Manifest, before: Obj | None, hpa_min: dict[str, int], out: Outcome
    ) -> None:
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        api_version, ns = manifest["apiVersion"], self.cluster.namespace
        if before is None:
            # Not among our labelled children: it is new, or someone else's, or ours with
            # its labels edited away. One GET tells which (only off the steady state).
            live = self.kube.get(api_version, kind, ns, name)
            if live is not None and not owned_by(live, self.cluster.uid):
                out.problems.append(Problem(kind, name, CONFLICT, conflict(live, self.cluster)))
                return
            before = live
        handover = False
        if kind == "Deployment" and "replicas" not in manifest["spec"]:
            if before is None:
                # Start an autoscaled Deployment at the HPA's floor, not the default of 1;
                # the next pass hands the field over to the HPA.
                manifest = {
                    **manifest,
                    "spec": {**manifest["spec"], "replicas": hpa_min.get(name, 1)},
                }
            elif owns_replicas(before):
                self._hand_over_replicas(before)
                handover = True
        manifest = stamped(manifest)
        if before is not None:
            if ops := repairs(manifest, before):
                self.kube.json_patch(api_version, kind, ns, name, ops)
            elif not handover and up_to_date(manifest, before):
                if kind == "Deployment":
                    out.deployments[name] = before
                return  # nothing would change: no request
        after = self.kube.apply(manifest)
        if kind == "Deployment":
            out.deployments[name] = after
        if before is None:
            self.metrics.changes.labels(kind, "created").inc()
            self.notify(NORMAL, "Created", f"created {kind} {name}")
        elif after["metadata"]["resourceVersion"] != before["metadata"]["resourceVersion"]:
            self.metrics.changes.labels(kind, "updated").inc()
            self.notify(NORMAL, "Updated", f"updated {kind} {name} to match the spec")

    def _hand_over_replicas(self, deployment: Obj) -> None:
        """Switching a component to autoscaling: simply dropping ``replicas`` from our apply
        would reset it to 1 (SSA removes fields only we owned). A second manager first
        co-owns the current value, so our next apply releases it to the HPA unchanged."""
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
