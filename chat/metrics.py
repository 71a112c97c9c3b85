"""Prometheus metrics, on a registry per process part (tests run several servers in one
process, so nothing registers on the global default registry).

Naming follows Prometheus' conventions: base units (`_seconds`, `_bytes`), counters end in
`_total`, no unit in a label. docs/observability.md lists each metric with the panel and the
alert that read it; renaming one breaks those, so the dashboards and rules are generated from the
same names (monitoring/).

A worker with several processes runs prometheus_client's multiprocess mode (values in files
under PROMETHEUS_MULTIPROC_DIR, summed by the supervisor's one listener; chat/app/workers.py):
gauges therefore say how processes combine (`multiprocess_mode`), which single-process servers
ignore. Gauges set by the sweep (backlog, lag, queue depth, dead letters) describe shared state
that whichever process ran the last sweep saw, so they combine by `livemostrecent`.
"""

from __future__ import annotations

import bisect
import os
import platform

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

import chat

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
LOOP_LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


def observe_many(histogram: Histogram, amount: float, count: int) -> None:
    """`count` observations of the same `amount`, at the cost of one: exactly what `count` calls
    of `histogram.observe(amount)` would record (bucket counts, `_count`; `_sum` up to float
    rounding). A fan-out to N sockets queues one event to all of them within microseconds, so
    the gateway observes its delivery latency once per fan-out with the fan-out's size instead
    of N times (each `observe` takes two locks; docs/performance.md).

    prometheus_client has no weighted observe: this reads the histogram child's buckets (a
    pinned version's internals; tests/unit/test_metrics_batch.py checks it against `observe`)
    and falls back to `observe` in a loop if they are not there."""
    if count <= 0:
        return
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total is None or histogram._labelnames:
        for _ in range(count):
            histogram.observe(amount)
        return
    total.inc(amount * count)
    # The first bucket whose upper bound is >= amount (`observe`'s `amount <= bound`); the
    # last bound is +Inf, so there always is one (a NaN, as with `observe`, lands in none).
    i = bisect.bisect_left(bounds, amount)
    if i < len(buckets) and amount <= bounds[i]:
        buckets[i].inc(count)


def add_process_collectors(registry: CollectorRegistry) -> None:
    """`process_*` (CPU seconds, resident memory, open fds) and `python_info`: a bare
    CollectorRegistry has neither, and the dashboards read them."""
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
            # A multiprocess child's registry is never served; the supervisor adds its own.
            add_process_collectors(r)
        self.build_info = Gauge(
            "chat_build_info",
            "Always 1; the labels say which build runs",
            ["version", "python"],
            registry=r,
            multiprocess_mode="max",
        )
        self.build_info.labels(chat.__version__, platform.python_version()).set(1)
        # -- HTTP --------------------------------------------------------------------------
        self.http_requests = Counter(
            "chat_http_requests_total",
            "HTTP requests by route and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_latency = Histogram(
            "chat_http_request_duration_seconds",
            "HTTP request latency, from the handler's start to its finish",
            ["route"],
            registry=r,
        )
        # -- both transports ----------------------------------------------------------------
        self.errors = Counter(
            "chat_errors_total",
            "Errors returned to clients, by transport (http, ws) and code",
            ["transport", "code"],
            registry=r,
        )
        self.auth_failures = Counter(
            "chat_auth_failures_total",
            "Rejected authentications (bearer token, WebSocket auth frame), by transport and "
            "error code",
            ["transport", "reason"],
            registry=r,
        )
        # -- WebSocket gateway -------------------------------------------------------------
        self.connections = Gauge(
            "chat_ws_connections",
            "Open authenticated WebSocket connections",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.connects = Counter(
            "chat_ws_connects_total", "WebSocket connections that authenticated", registry=r
        )
        self.disconnects = Counter(
            "chat_ws_disconnects_total",
            "Authenticated WebSocket connections that ended (either side closed)",
            registry=r,
        )
        self.frames_in = Counter(
            "chat_ws_frames_in_total", "Frames received, by type", ["type"], registry=r
        )
        self.frames_out = Counter(
            "chat_ws_frames_out_total", "Frames queued to sockets, by type", ["type"], registry=r
        )
        self.deliveries = Counter(
            "chat_deliveries_total",
            "Message events queued to a recipient socket (live or replayed); a frame dropped "
            "because the socket was closing is not counted",
            registry=r,
        )
        self.replayed = Counter(
            "chat_replayed_events_total",
            "Message events read back from the log and queued to a socket (resume, gap fill)",
            registry=r,
        )
        self.delivery_latency = Histogram(
            "chat_send_to_deliver_seconds",
            "Time from a message's server timestamp to its queueing to a recipient socket, for "
            "live deliveries (replays are counted in chat_replayed_events_total instead)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ack_latency = Histogram(
            "chat_send_to_ack_seconds",
            "Time from a send frame's arrival to its ack (the message is durable)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.closes = Counter(
            "chat_ws_closes_total",
            "Sockets closed by the server, by close code",
            ["code"],
            registry=r,
        )
        self.gap_fills = Counter(
            "chat_gap_fills_total",
            "Live events that arrived ahead of a socket's cursor, so the gap was read from the "
            "log (lost pub/sub messages)",
            registry=r,
        )
        self.not_recoverable = Counter(
            "chat_resume_not_recoverable_total",
            "Resumes or refills answered 'not_recoverable' (the client must reload)",
            registry=r,
        )
        self.bus_resets = Counter(
            "chat_bus_resets_total",
            "Bus reconnections after which every socket re-read its conversations",
            registry=r,
        )
        self.outbound_bytes = Gauge(
            "chat_ws_outbound_queue_bytes",
            "Bytes queued to this process's sockets and not yet sent",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.loop_lag = Histogram(
            "chat_event_loop_lag_seconds",
            "How late the gateway's event loop ran a timer (time spent blocked)",
            buckets=LOOP_LAG_BUCKETS,
            registry=r,
        )
        # -- stores ------------------------------------------------------------------------
        self.store_latency = Histogram(
            "chat_store_call_duration_seconds",
            "Latency of calls to the stores, by port (log, archive, accounts, ...) and method",
            ["port", "method"],
            buckets=STORE_BUCKETS,
            registry=r,
        )
        self.store_errors = Counter(
            "chat_store_errors_total",
            "Store calls that raised, by port and method",
            ["port", "method"],
            registry=r,
        )
        # -- persistence and queues (set by the sweep) --------------------------------------
        self.persist_lag = Gauge(
            "chat_persist_backlog_conversations",
            "Conversations whose archive lags their log (last sweep)",
            registry=r,
            multiprocess_mode="livemostrecent",
        )
        self.persist_lag_events = Gauge(
            "chat_persist_lag_events",
            "Events in the log not yet in the archive, over all conversations (last sweep)",
            registry=r,
            multiprocess_mode="livemostrecent",
        )
        self.persist_lag_seconds = Gauge(
            "chat_persist_lag_seconds",
            "Age of the oldest event not yet in the archive; 0 when none (last sweep)",
            registry=r,
            multiprocess_mode="livemostrecent",
        )
        self.queue_messages = Gauge(
            "chat_queue_messages",
            "Jobs waiting in a Dramatiq queue, by queue (delayed retries under '<queue>.DQ')",
            ["queue"],
            registry=r,
            multiprocess_mode="livemostrecent",
        )
        self.dead_letters = Gauge(
            "chat_queue_dead_letters",
            "Jobs in a Dramatiq queue's dead-letter set (retries exhausted), by queue",
            ["queue"],
            registry=r,
            multiprocess_mode="livemostrecent",
        )
        self.jobs = Counter(
            "chat_jobs_total",
            "Dramatiq jobs processed, by queue, actor and outcome (ok, error: it will be "
            "retried, skipped, dead_lettered: retries exhausted)",
            ["queue", "actor", "outcome"],
            registry=r,
        )
        self.job_duration = Histogram(
            "chat_job_duration_seconds",
            "Run time of a Dramatiq job, by queue and actor",
            ["queue", "actor"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=r,
        )
        self.sweeps = Counter(
            "chat_sweeps_total", "Backlog sweeps run (each sets the gauges above)", registry=r
        )
        self.worker_processes = Gauge(
            "chat_worker_processes",
            "Worker processes running (each sets 1; a pod's supervisor sums the live ones)",
            registry=r,
            multiprocess_mode="livesum",
        )
