"""Stands in for the kubelet: the only node-side thing the tests need is pods reporting
Ready (Deployments) or Succeeded (the migration Job). Everything that reacts to that, the
ReplicaSet, Deployment and Job controllers and the operator, runs for real.

Migrations can be held per namespace, so a test can observe the operator waiting for the
migration Job before rolling a new version.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kubernetes

SELECTOR = "app.kubernetes.io/part-of=chatcluster"


class FakeKubelet:
    def __init__(self, kubeconfig: Path, interval: float = 0.3) -> None:
        client = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
        self._core = kubernetes.client.CoreV1Api(client)
        self._interval = interval
        self._stop = threading.Event()
        self._held: set[str] = set()
        self._failing: set[str] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="fake-kubelet", daemon=True)
        self.errors: list[str] = []

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def hold_migrations(self, namespace: str, held: bool = True) -> None:
        with self._lock:
            (self._held.add if held else self._held.discard)(namespace)

    def fail_migrations(self, namespace: str, failing: bool = True) -> None:
        with self._lock:
            (self._failing.add if failing else self._failing.discard)(namespace)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._sync()
            except Exception as exc:
                self.errors.append(repr(exc))

    def _sync(self) -> None:
        pods = self._core.list_pod_for_all_namespaces(label_selector=SELECTOR).items
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        for pod in pods:
            meta, status = pod.metadata, pod.status
            if meta.deletion_timestamp or status.phase in ("Succeeded", "Failed"):
                continue
            ns = meta.namespace
            body: dict[str, Any]
            if meta.labels.get("app.kubernetes.io/component") == "migration":
                with self._lock:
                    if ns in self._held:
                        continue
                    phase = "Failed" if ns in self._failing else "Succeeded"
                body = {"status": {"phase": phase, "startTime": now}}
            else:
                ready = any(
                    c.type == "Ready" and c.status == "True" for c in status.conditions or ()
                )
                if status.phase == "Running" and ready:
                    continue
                conds = [
                    {"type": t, "status": "True", "lastTransitionTime": now}
                    for t in ("Initialized", "ContainersReady", "Ready", "PodScheduled")
                ]
                body = {
                    "status": {
                        "phase": "Running",
                        "startTime": now,
                        "conditions": conds,
                        "podIP": "10.244.0.10",
                    }
                }
            self._core.patch_namespaced_pod_status(meta.name, ns, body)
