"""Leader election on a ``coordination.k8s.io/v1`` Lease, as client-go's leaderelection does
it, so two operator replicas can run and exactly one writes.

Guarantees:
- a replica considers itself leader only until ``renew_deadline`` after its last successful
  acquire/renew, which is shorter than the Lease duration another replica waits before it
  takes over, so two replicas never both believe they lead (with clocks that agree to within
  ``lease_seconds - renew_deadline``);
- a takeover is a PUT with the Lease's resourceVersion: of two candidates racing for an
  expired Lease, the API server lets exactly one win (409 for the other);
- a replica that stops cleanly releases the Lease, so the standby takes over at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes.client.exceptions import ApiException

from chat_operator.kube import Kube

log = logging.getLogger(__name__)

LEASE = ("coordination.k8s.io/v1", "Lease")


def _micro(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class LeaderElector:
    def __init__(
        self,
        kube: Kube,
        namespace: str,
        name: str,
        identity: str,
        lease_seconds: float = 15.0,
        on_started_leading: Callable[[], None] = lambda: None,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._kube = kube
        self._namespace = namespace
        self._name = name
        self.identity = identity
        self._lease = lease_seconds
        self._renew_deadline = lease_seconds * 2 / 3
        self._retry = lease_seconds / 5
        self._started = on_started_leading
        self._wall = wall
        self._monotonic = monotonic
        self._valid_until = 0.0
        self._leading = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def is_leader(self) -> bool:
        return self._leading and self._monotonic() < self._valid_until

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="leader-election", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        if self.is_leader():
            self._release()

    def _run(self) -> None:
        while not self._stop.is_set():
            attempt = self._monotonic()
            try:
                won = self.try_acquire_or_renew()
            except Exception as exc:  # API down or RBAC missing: stay a candidate
                log.error("leader election: %s", Kube.describe(exc))
                won = False
            was = self.is_leader()
            if won:
                self._valid_until = attempt + self._renew_deadline
                self._leading = True
                if not was:
                    log.info(
                        "leader election: %s now leads (lease %s/%s)",
                        self.identity,
                        self._namespace,
                        self._name,
                    )
                    self._started()
            elif was and not self.is_leader():
                log.warning("leader election: %s lost the lease", self.identity)
            self._stop.wait(self._retry)

    def try_acquire_or_renew(self) -> bool:
        now = self._wall()
        lease = self._kube.get(*LEASE, self._namespace, self._name)
        if lease is None:
            try:
                self._kube.create(self._manifest(None, now, transitions=0, acquired=now))
            except ApiException as exc:
                if exc.status == 409:
                    return False  # another replica created it first
                raise
            return True
        spec: dict[str, Any] = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        renewed = _parse(spec.get("renewTime"))
        duration = float(spec.get("leaseDurationSeconds") or self._lease)
        held = holder and holder != self.identity and renewed is not None
        if held and renewed + timedelta(seconds=duration) > now:  # type: ignore[operator]
            return False  # held by someone else, not expired
        mine = holder == self.identity
        transitions = int(spec.get("leaseTransitions") or 0) + (0 if mine else 1)
        acquired = _parse(spec.get("acquireTime")) if mine else now
        try:
            self._kube.replace(self._manifest(lease, now, transitions, acquired or now))
        except ApiException as exc:
            if exc.status == 409:
                return False  # lost the race for an expired lease
            raise
        return True

    def _manifest(
        self, lease: dict[str, Any] | None, now: datetime, transitions: int, acquired: datetime
    ) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": self._name, "namespace": self._namespace}
        if lease is not None:
            meta["resourceVersion"] = lease["metadata"]["resourceVersion"]
        return {
            "apiVersion": LEASE[0],
            "kind": LEASE[1],
            "metadata": meta,
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": max(1, round(self._lease)),
                "acquireTime": _micro(acquired),
                "renewTime": _micro(now),
                "leaseTransitions": transitions,
            },
        }

    def _release(self) -> None:
        try:
            lease = self._kube.get(*LEASE, self._namespace, self._name)
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            lease["spec"]["holderIdentity"] = ""
            lease["spec"]["leaseDurationSeconds"] = 1
            self._kube.replace(lease)
            self._leading = False
            log.info("leader election: %s released the lease", self.identity)
        except Exception as exc:
            log.error("leader election: could not release the lease: %s", Kube.describe(exc))
