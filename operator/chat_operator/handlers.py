"""Kopf wiring: which events trigger a reconcile. All logic lives in :mod:`reconcile`.

Handlers are registered on an explicit registry (not Kopf's global one) so tests and the CLI
control exactly what runs, with the resync interval chosen at start-up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import kopf

from chat_operator import GROUP, PLURAL, VERSION
from chat_operator.reconcile import Notify, Reconciler

RESOURCE = (GROUP, VERSION, PLURAL)


@dataclass(frozen=True)
class HandlerSettings:
    resync_seconds: float
    """How often every ChatCluster is reconciled even without a change: the bound on how long
    drift (a deleted child, an edited field) or a child's readiness change goes unnoticed."""


def _notifier(body: Any) -> Notify:
    def notify(reason: str, message: str) -> None:
        kopf.info(body, reason=reason, message=message)

    return notify


def register(registry: Any, reconciler: Reconciler, settings: HandlerSettings) -> None:
    def reconcile(body: Any, **_: Any) -> None:
        reconciler.reconcile(body, _notifier(body))

    def forget(body: Any, **_: Any) -> None:
        reconciler.forget(body["metadata"]["uid"])

    def configure(settings: Any, **_: Any) -> None:
        # Keep Kopf's bookkeeping in annotations: the status schema is strict, and the API
        # server would silently prune an undeclared status.kopf field.
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix=GROUP, key="last-handled-configuration"
        )
        settings.persistence.finalizer = f"{GROUP}/operator"
        # No cluster-wide CRD/namespace watching: that would need RBAC we do not grant.
        settings.scanning.disabled = True
        settings.posting.level = logging.INFO
        settings.watching.server_timeout = 300

    kopf.on.startup(registry=registry)(configure)
    # Same credentials as our own client (in-cluster token, else KUBECONFIG); explicit because
    # a plain OperatorRegistry has no fallback login handlers.
    kopf.on.login(registry=registry)(kopf.login_via_client)
    # A failed pass (e.g. an API hiccup) is retried after one resync interval, not Kopf's
    # default 60 s: the reconcile is idempotent, so retrying early is safe.
    retry = settings.resync_seconds
    kopf.on.resume(*RESOURCE, registry=registry, id="reconcile", backoff=retry)(reconcile)
    kopf.on.create(*RESOURCE, registry=registry, id="reconcile", backoff=retry)(reconcile)
    kopf.on.update(*RESOURCE, registry=registry, id="reconcile", field="spec", backoff=retry)(
        reconcile
    )
    kopf.timer(
        *RESOURCE,
        registry=registry,
        id="resync",
        interval=settings.resync_seconds,
        initial_delay=settings.resync_seconds,
        backoff=retry,
    )(reconcile)
    kopf.on.delete(*RESOURCE, registry=registry, id="forget", optional=True)(forget)
