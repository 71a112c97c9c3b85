"""Dramatiq job metrics on the chat's own registry (Dramatiq's Prometheus middleware would
register on the global registry and serve its own port, which pods do not declare). In a
multiprocess worker pod they are summed by the supervisor's one listener like the rest."""

from __future__ import annotations

import threading
import time
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy

from chat.metrics import Metrics


class JobMetrics(dramatiq.Middleware):
    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics
        self._started: dict[str, float] = {}
        self._lock = threading.Lock()  # Dramatiq calls this from each worker thread

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        with self._lock:
            self._started[message.message_id] = time.perf_counter()

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        with self._lock:
            started = self._started.pop(message.message_id, None)
        labels = (message.queue_name, message.actor_name)
        if started is not None:
            self._m.job_duration.labels(*labels).observe(time.perf_counter() - started)
        outcome = "ok" if exception is None else "error"
        self._m.jobs.labels(*labels, outcome).inc()

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        with self._lock:
            self._started.pop(message.message_id, None)
        self._m.jobs.labels(message.queue_name, message.actor_name, "skipped").inc()

    def after_nack(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        """Retries exhausted: the message went to the dead-letter set."""
        self._m.jobs.labels(message.queue_name, message.actor_name, "dead_lettered").inc()
