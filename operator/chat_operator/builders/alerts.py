"""Alerting rules as code: the per-ChatCluster rule groups (a PrometheusRule the operator
applies next to the ServiceMonitor) and the operator's own rules (shipped by the chart,
generated into charts/chatcluster-operator/rules/ by `python -m monitoring.generate`).

Every alert carries `severity` and the annotations `summary`, `description` and `runbook_url`,
which points at its section of docs/runbooks.md (the anchor is the alert's name in lower case)
under a base URL: by default this repository's docs/runbooks.md as published; a platform team
that hosts its own copy sets the chart's `runbookBaseUrl` (the operator reads it at start-up,
chat_operator/settings.py, and the chart's own rule substitutes it).
The SLOs behind the burn-rate alerts are written down in docs/observability.md#slos:

- availability of send/ack: 99.9 % of sends (WebSocket `send` frames and HTTP `POST
  .../messages`) are acked, not answered with a server-side error (`internal`,
  `dependency_unavailable`; HTTP status 5xx), over 30 days;
- delivery latency: 99 % of deliveries are written within 250 ms of the send (the
  `chat_send_to_deliver_seconds` bucket `le="0.25"`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_RUNBOOK_BASE_URL = "https://github.com/chatcluster/chatcluster/blob/main/docs/runbooks.md"

AVAILABILITY_OBJECTIVE = 0.999
LATENCY_OBJECTIVE_S = 0.25
LATENCY_OBJECTIVE = 0.99
SERVER_ERROR_CODES = "internal|dependency_unavailable"
HTTP_SEND = 'route="/api/v1/conversations/{conversation_id}/messages",method="POST"'
"""The HTTP send (chat/api/conversations.py MessagesHandler) as `chat_http_requests_total`
labels it: the route template, so one series per status, not per conversation. Its 5xx answers
are exactly the server errors (500 `internal`, 503 `dependency_unavailable`)."""

# Multiwindow, multi-burn-rate (Google SRE workbook, ch. 5): a page when 2 % of a 30-day budget
# burns in an hour, a ticket when 10 % burns in six hours; the short window makes it resolve fast.
BURN_WINDOWS = (
    ("Fast", "critical", 14.4, "1h", "5m", "2m"),
    ("Slow", "warning", 6.0, "6h", "30m", "15m"),
)


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    for_: str
    severity: str
    summary: str
    description: str

    def rule(self, runbook_base_url: str = DEFAULT_RUNBOOK_BASE_URL) -> dict[str, Any]:
        return {
            "alert": self.name,
            "expr": self.expr,
            "for": self.for_,
            "labels": {"severity": self.severity},
            "annotations": {
                "summary": self.summary,
                "description": self.description,
                "runbook_url": f"{runbook_base_url}#{self.name.lower()}",
            },
        }


def cluster_alerts(namespace: str, name: str) -> list[Alert]:
    """The chat's alerts for one ChatCluster, selecting its Services' scrape targets."""
    base = f'namespace="{namespace}"'
    sel = f'{base},service=~"{name}-(api|ws|workers)"'
    ws = f'{base},service="{name}-ws"'
    workers = f'{base},service="{name}-workers"'
    who = f"ChatCluster {namespace}/{name}"

    def ratio(window: str) -> str:
        """Server-failed sends over sends, both transports. WebSocket: server errors on any
        frame over `send` frames, conservative (a failed `read` counts against the send budget
        too) and readable from the counters that exist. HTTP: the send route's 5xx answers over
        its requests. Each side is `or vector(0)`: a cluster whose bots never sent over HTTP
        (or that has no gateway series yet) has no such series, and an empty side would
        otherwise blank the whole sum and silence the alert."""

        def total(selector: str) -> str:
            return f"(sum(rate({selector}[{window}])) or vector(0))"

        ws_errors = total(f'chat_errors_total{{{sel},transport="ws",code=~"{SERVER_ERROR_CODES}"}}')
        http_errors = total(f'chat_http_requests_total{{{sel},{HTTP_SEND},status=~"5.."}}')
        ws_sends = total(f'chat_ws_frames_in_total{{{sel},type="send"}}')
        http_sends = total(f"chat_http_requests_total{{{sel},{HTTP_SEND}}}")
        return f"(({ws_errors} + {http_errors}) / clamp_min({ws_sends} + {http_sends}, 1e-9))"

    budget = round(1 - AVAILABILITY_OBJECTIVE, 6)
    alerts = [
        Alert(
            "ChatNoReadyGateways",
            f"absent(up{{{ws}}} == 1)",
            "2m",
            "critical",
            f"{who}: no WebSocket gateway is up",
            "No ws target answered its last scrape: clients cannot connect or chat.",
        ),
        Alert(
            "ChatNoWorkers",
            f"absent(up{{{workers}}} == 1)",
            "5m",
            "critical",
            f"{who}: no worker is up",
            "No worker target answered its last scrape: messages stay in Redis and are not "
            "archived (chat continues; persistence lag grows).",
        ),
        Alert(
            "ChatTargetDown",
            f"up{{{sel}}} == 0",
            "5m",
            "warning",
            f"{who}: {{{{ $labels.pod }}}} does not answer scrapes",
            "A pod of the cluster has not served /metrics for 5 minutes.",
        ),
        Alert(
            "ChatDeliveryLatencyHigh",
            "histogram_quantile(0.99, sum by (le) "
            f"(rate(chat_send_to_deliver_seconds_bucket{{{sel}}}[5m]))) > {LATENCY_OBJECTIVE_S}",
            "10m",
            "warning",
            f"{who}: delivery p99 is over {int(LATENCY_OBJECTIVE_S * 1000)} ms",
            f"Send-to-deliver p99 over 5 minutes is above the objective "
            f"({int(LATENCY_OBJECTIVE_S * 1000)} ms) for 10 minutes.",
        ),
        Alert(
            "ChatErrorRatioHigh",
            f"{ratio('5m')} > 0.01",
            "10m",
            "warning",
            f"{who}: over 1 % of sends fail with a server error",
            "Over 1 % of sends (WebSocket and HTTP) got internal or dependency_unavailable "
            "errors over 5 minutes, for 10 minutes.",
        ),
    ]
    for speed, severity, factor, long, short, for_ in BURN_WINDOWS:
        alerts.append(
            Alert(
                f"ChatSendAvailabilityBurn{speed}",
                f"{ratio(long)} > ({factor} * {budget}) and {ratio(short)} > ({factor} * {budget})",
                for_,
                severity,
                f"{who}: the send/ack availability budget burns {factor}x too fast",
                f"Server errors on sends over {long} and {short} exceed {factor} times the "
                f"{AVAILABILITY_OBJECTIVE * 100:g} % objective's error budget.",
            )
        )
    alerts += [
        Alert(
            "ChatPersistenceLagGrowing",
            f"max(chat_persist_lag_seconds{{{sel}}}) > 60 and "
            f"deriv(max(chat_persist_lag_events{{{sel}}})[10m:1m]) > 0",
            "10m",
            "warning",
            f"{who}: persistence lag keeps growing",
            "The oldest unarchived event is over a minute old and the backlog "
            "grew for 10 minutes: the archive (MongoDB) or the workers are not keeping up.",
        ),
        Alert(
            "ChatDeadLetters",
            f"max by (queue) (chat_queue_dead_letters{{{sel}}}) > 0",
            "5m",
            "warning",
            f"{who}: jobs in the {{{{ $labels.queue }}}} dead-letter set",
            "Jobs exhausted their retries. The sweep re-queues their "
            "conversations, but something failed for over ten minutes.",
        ),
        Alert(
            "ChatSlowConsumerClosesSpiking",
            f'sum(rate(chat_ws_closes_total{{{sel},code="4008"}}[5m])) > 0.5',
            "10m",
            "warning",
            f"{who}: many sockets closed as slow consumers (4008)",
            "Over 0.5 closes/s with 4008 for 10 minutes: clients cannot read as fast as "
            "messages arrive, or the gateway's writes stall.",
        ),
    ]
    return alerts


def operator_alerts() -> list[Alert]:
    return [
        Alert(
            "ChatClusterOperatorReconcileErrors",
            'sum(rate(chatcluster_operator_reconciles_total{result="error"}[10m])) > 0',
            "10m",
            "warning",
            "The chatcluster operator keeps failing to reconcile",
            "Reconcile passes ended in an error for 10 minutes; the operator's log and the "
            "ChatClusters' conditions and events say why.",
        ),
        Alert(
            "ChatClusterNotReady",
            "chatcluster_operator_cluster_ready == 0",
            "15m",
            "warning",
            "ChatCluster {{ $labels.namespace }}/{{ $labels.name }} is not Ready",
            "Its Ready condition has been False for 15 minutes.",
        ),
    ]


def cluster_groups(
    namespace: str, name: str, runbook_base_url: str = DEFAULT_RUNBOOK_BASE_URL
) -> list[dict[str, Any]]:
    return [
        {
            "name": f"chatcluster.{namespace}.{name}",
            "rules": [a.rule(runbook_base_url) for a in cluster_alerts(namespace, name)],
        }
    ]


def operator_groups(runbook_base_url: str = DEFAULT_RUNBOOK_BASE_URL) -> list[dict[str, Any]]:
    return [
        {
            "name": "chatcluster-operator",
            "rules": [a.rule(runbook_base_url) for a in operator_alerts()],
        }
    ]
