"""Kopf wiring: Kopf's watch streams only feed the work queue; all logic lives in
:mod:`reconcile`, run by :mod:`workqueue` workers.

- A ChatCluster event queues its key when the generation moved (our own status patches do
  not re-trigger a pass); the initial listing queues every cluster.
- A child event (Deployment, Service, ConfigMap, Job, HPA, PDB, Ingress carrying our
  ``managed-by`` label) queues the ChatCluster named by its controller owner reference,
  after a short delay so a burst of events becomes one pass: drift is repaired in seconds,
  not at the next resync.
- No Kopf timer, daemon or deletion handler: those make Kopf put a finalizer on every
  ChatCluster, and a finalizer makes deletion hang while the operator is down. Children are
  removed by the garbage collector through their owner references, so none is needed.
- The API's errors never stop the process: Kopf's request retries are made endless
  (with capped backoff), so a lost ``watch`` permission is logged and retried instead of
  ending the operator after the default ~54 s of retries.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import kopf

from chat_operator import GROUP, KIND, PLURAL, VERSION
from chat_operator.builders.common import MANAGED_BY
from chat_operator.workqueue import WorkQueue

RESOURCE = (GROUP, VERSION, PLURAL)
# Watched children (group, version, plural). ServiceMonitors are left to the resync: their
# CRD may be installed after the operator started.
CHILDREN = (
    ("apps", "v1", "deployments"),
    ("", "v1", "services"),
    ("", "v1", "configmaps"),
    ("batch", "v1", "jobs"),
    ("autoscaling", "v2", "horizontalpodautoscalers"),
    ("policy", "v1", "poddisruptionbudgets"),
    ("networking.k8s.io", "v1", "ingresses"),
)
# Coalesces the burst of events one pass's writes (and a rollout) cause.
CHILD_EVENT_DELAY = 0.5

Key = tuple[str, str]  # (namespace, name)


@dataclass(frozen=True)
class HandlerSettings:
    resync_seconds: float
    """How often every ChatCluster is reconciled even without an event: the bound on how
    long drift goes unnoticed if a watch event was missed."""
    watch_children: bool = True


class EndlessBackoff:
    """Kopf's ``error_backoffs``: 1, 2, 4, ... capped, forever. A fresh iterator per request,
    so every request gets the whole sequence."""

    def __init__(self, cap: float = 30.0) -> None:
        self.cap = cap

    def __iter__(self) -> Iterator[float]:
        delay = 1.0
        while True:
            yield delay
            delay = min(self.cap, delay * 2)


def register(
    registry: Any,
    queue: WorkQueue[Key],
    forget: Any,
    settings: HandlerSettings,
) -> None:
    generations: dict[str, int] = {}

    def configure(settings: Any, **_: Any) -> None:
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix=GROUP, key="last-handled-configuration"
        )
        settings.persistence.finalizer = f"{GROUP}/operator"
        # No cluster-wide CRD/namespace watching: that would need RBAC we do not grant.
        settings.scanning.disabled = True
        # Kopf's own per-object warnings (e.g. a failing handler) become Events too.
        settings.posting.loggers = True
        settings.posting.level = logging.WARNING
        settings.watching.server_timeout = 300
        settings.networking.error_backoffs = EndlessBackoff()
        queue.start()

    def cleanup(**_: Any) -> None:
        queue.stop()

    async def on_cluster(event: Any, body: Any, **_: Any) -> None:
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        if event.get("type") == "DELETED":
            generations.pop(meta["uid"], None)
            forget(meta["uid"], *key)
            return
        generation = int(meta.get("generation", 0))
        if generations.get(meta["uid"]) != generation:
            generations[meta["uid"]] = generation
            queue.add(key)

    async def on_child(body: Any, **_: Any) -> None:
        meta = body["metadata"]
        for ref in meta.get("ownerReferences") or ():
            if (
                ref.get("kind") == KIND
                and ref.get("controller")
                and ref.get("apiVersion", "").startswith(f"{GROUP}/")
            ):
                queue.add((meta["namespace"], ref["name"]), CHILD_EVENT_DELAY)

    kopf.on.startup(registry=registry)(configure)
    kopf.on.cleanup(registry=registry)(cleanup)
    # Same credentials as our own client (in-cluster token, else KUBECONFIG); explicit because
    # a plain OperatorRegistry has no fallback login handlers.
    kopf.on.login(registry=registry)(kopf.login_via_client)
    kopf.on.event(*RESOURCE, registry=registry, id="queue")(on_cluster)
    if settings.watch_children:
        for group, version, plural in CHILDREN:
            kopf.on.event(
                group,
                version,
                plural,
                registry=registry,
                id="queue-owner",
                labels={"app.kubernetes.io/managed-by": MANAGED_BY},
            )(on_child)
