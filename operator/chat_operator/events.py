"""Kubernetes Events on a ChatCluster, posted by the reconciler itself.

Every event is also logged on the cluster's logger (so it carries ``[namespace/name]``).
A failing child is retried with backoff and reported on every pass; the same event
(object, type, reason, message) is posted at most once per ``quiet_seconds`` so a stuck child
does not flood etcd. Posting failures (e.g. RBAC on events lost) are logged, never raised: an
Event is a report, not part of the reconcile.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from chat_operator.kube import Kube
from chat_operator.logs import reference

NORMAL = "Normal"
WARNING = "Warning"

Notify = Callable[[str, str, str], None]  # (type, reason, message)


class Recorder:
    def __init__(
        self,
        kube: Kube,
        quiet_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._kube = kube
        self._quiet = quiet_seconds
        self._clock = clock
        self._posted: dict[tuple[str, str, str, str], float] = {}
        self._lock = threading.Lock()

    def for_object(self, involved: Mapping[str, Any]) -> Notify:
        logger = reference(involved["metadata"])

        def notify(event_type: str, reason: str, message: str) -> None:
            level = logging.WARNING if event_type == WARNING else logging.INFO
            logger.log(level, "%s: %s", reason, message)
            key = (str(involved["metadata"].get("uid")), event_type, reason, message)
            now = self._clock()
            with self._lock:
                last = self._posted.get(key)
                if last is not None and now - last < self._quiet:
                    return
                self._posted[key] = now
            try:
                self._kube.post_event(involved, event_type, reason, message)
            except Exception as exc:
                logger.error("could not post Event %s: %s", reason, Kube.describe(exc))

        return notify

    def forget(self, uid: str) -> None:
        with self._lock:
            for key in [k for k in self._posted if k[0] == uid]:
                del self._posted[key]
