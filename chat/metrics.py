"""Prometheus metrics, on a registry per process part (tests run several servers in one
process, so nothing registers on the global default registry).

A worker with several processes runs prometheus_client's multiprocess mode (values in files
under PROMETHEUS_MULTIPROC_DIR, summed by the supervisor's one listener; chat/worker/main.py):
gauges therefore say how processes combine (`multiprocess_mode`), which single-process servers
ignore."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.http_requests = Counter(
            "chat_http_requests_total",
            "HTTP requests by route and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_latency = Histogram(
            "chat_http_request_seconds",
            "HTTP request latency",
            ["route"],
            registry=r,
        )
        self.connections = Gauge(
            "chat_ws_connections",
            "Open authenticated WebSocket connections",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.frames_in = Counter(
            "chat_ws_frames_in_total", "Frames received, by type", ["type"], registry=r
        )
        self.frames_out = Counter(
            "chat_ws_frames_out_total", "Frames sent, by type", ["type"], registry=r
        )
        self.deliveries = Counter(
            "chat_deliveries_total", "Message events written to client sockets", registry=r
        )
        self.delivery_latency = Histogram(
            "chat_send_to_deliver_seconds",
            "Time from a message's server timestamp to its write to a recipient socket",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self.errors = Counter(
            "chat_errors_total", "Errors returned to clients, by code", ["code"], registry=r
        )
        self.closes = Counter(
            "chat_ws_closes_total",
            "Sockets closed by the server, by close code",
            ["code"],
            registry=r,
        )
        self.persist_lag = Gauge(
            "chat_persist_backlog_conversations",
            "Conversations whose archive lags their log (last sweep)",
            registry=r,
            multiprocess_mode="max",
        )
        self.worker_processes = Gauge(
            "chat_worker_processes",
            "Worker processes running (each sets 1; a pod's supervisor sums the live ones)",
            registry=r,
            multiprocess_mode="livesum",
        )
