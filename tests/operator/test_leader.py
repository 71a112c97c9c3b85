"""LeaderElector.try_acquire_or_renew against an in-memory Lease store with the API
server's optimistic concurrency (409 on a stale resourceVersion)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from chat_operator.leader import LeaderElector
from kubernetes.client.exceptions import ApiException

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Leases:
    """One Lease with resourceVersion checks: the one behaviour the elector relies on."""

    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.version = 0

    def get(self, *_: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.lease)

    def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        if self.lease is not None:
            raise ApiException(status=409)
        return self._store(manifest)

    def replace(self, manifest: dict[str, Any]) -> dict[str, Any]:
        if manifest["metadata"].get("resourceVersion") != str(self.version):
            raise ApiException(status=409)
        return self._store(manifest)

    def _store(self, manifest: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        self.lease = copy.deepcopy(manifest)
        self.lease["metadata"]["resourceVersion"] = str(self.version)
        return copy.deepcopy(self.lease)


def elector(store: Leases, identity: str, now: list[datetime]) -> LeaderElector:
    return LeaderElector(
        store,  # type: ignore[arg-type]
        "chat-system",
        "chatcluster-operator",
        identity,
        lease_seconds=15,
        wall=lambda: now[0],
    )


def test_a_live_lease_is_not_taken_an_expired_one_is() -> None:
    store, now = Leases(), [T0]
    a, b = elector(store, "a", now), elector(store, "b", now)
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()
    now[0] = T0 + timedelta(seconds=10)
    assert a.try_acquire_or_renew()  # renewal
    now[0] = T0 + timedelta(seconds=24)
    assert not b.try_acquire_or_renew()  # renewed at 10 s: valid until 25 s
    now[0] = T0 + timedelta(seconds=26)
    assert b.try_acquire_or_renew()
    assert store.lease is not None
    assert store.lease["spec"]["holderIdentity"] == "b"
    assert store.lease["spec"]["leaseTransitions"] == 1
    assert not a.try_acquire_or_renew()


def test_of_two_racing_candidates_exactly_one_wins() -> None:
    store, now = Leases(), [T0]
    assert elector(store, "a", now).try_acquire_or_renew()
    now[0] = T0 + timedelta(seconds=60)  # a is long dead
    b, c = elector(store, "b", now), elector(store, "c", now)
    seen = store.get()
    original_get = store.get
    store.get = lambda *_: copy.deepcopy(seen)  # type: ignore[method-assign]
    results = [b.try_acquire_or_renew(), c.try_acquire_or_renew()]
    store.get = original_get  # type: ignore[method-assign]
    assert sorted(results) == [False, True]
