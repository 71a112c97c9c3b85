"""Grafana dashboards as code: the chat overview, a per-component drill-down and the operator
dashboard, as plain dashboard JSON (schemaVersion 39). The chart ships them as
`grafana_dashboard`-labelled ConfigMaps (charts/chatcluster-operator/dashboards/*.json, written
by `python -m monitoring.generate`); the operator ships the overview per ChatCluster.

Every chat query selects one cluster's scrape targets through the `namespace` and `chatcluster`
variables, exactly as the alerts do (builders/alerts.py), and reads `datasource`.
"""

from __future__ import annotations

from typing import Any

from chat_operator.builders.alerts import HTTP_SEND

SEL = 'namespace="$namespace",service=~"$chatcluster-(api|ws|workers)"'
RATE = "$__rate_interval"
DS = {"type": "prometheus", "uid": "${datasource}"}

Panel = dict[str, Any]


def _thresholds(*steps: tuple[float | None, str]) -> dict[str, Any]:
    return {"mode": "absolute", "steps": [{"value": v, "color": c} for v, c in steps]}


def panel(
    title: str,
    exprs: list[tuple[str, str]],
    unit: str,
    *,
    kind: str = "timeseries",
    description: str = "",
    thresholds: tuple[tuple[float | None, str], ...] = ((None, "green"),),
) -> Panel:
    """exprs: (PromQL, legend) pairs."""
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "fieldConfig": {
            "defaults": {"unit": unit, "thresholds": _thresholds(*thresholds)},
            "overrides": [],
        },
        "targets": [
            {"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend, "datasource": DS}
            for i, (expr, legend) in enumerate(exprs)
        ],
    }


def _variables(
    namespace_query: str, cluster_query: str, cluster_regex: str, default_cluster: str | None
) -> list[Any]:
    cluster: dict[str, Any] = {
        "name": "chatcluster",
        "label": "ChatCluster",
        "type": "query",
        "datasource": DS,
        "query": {"query": cluster_query, "refId": "chatcluster"},
        "regex": cluster_regex,
        "refresh": 2,
    }
    if default_cluster is not None:
        cluster["current"] = {"text": default_cluster, "value": default_cluster}
    return [
        {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus"},
        {
            "name": "namespace",
            "label": "Namespace",
            "type": "query",
            "datasource": DS,
            "query": {"query": namespace_query, "refId": "namespace"},
            "refresh": 2,
        },
        cluster,
    ]


def _board(uid: str, title: str, panels: list[Panel], variables: list[Any]) -> dict[str, Any]:
    laid = []
    for index, p in enumerate(panels):
        laid.append(
            {
                **p,
                "id": index + 1,
                "gridPos": {"x": (index % 2) * 12, "y": (index // 2) * 8, "w": 12, "h": 8},
            }
        )
    return {
        "uid": uid,
        "title": title,
        "tags": ["chatcluster"],
        "schemaVersion": 39,
        "editable": False,
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "30s",
        "templating": {"list": variables},
        "panels": laid,
    }


def _quantile(q: float, metric: str, by: str = "le", sel: str = SEL) -> str:
    return f"histogram_quantile({q}, sum by ({by}) (rate({metric}_bucket{{{sel}}}[{RATE}])))"


def _rate(metric: str, sel: str, by: str = "") -> str:
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} (rate({metric}{{{sel}}}[{RATE}]))"


def overview_panels() -> list[Panel]:
    deliver = "chat_send_to_deliver_seconds"
    return [
        panel(
            "Connections",
            [(f"sum(chat_ws_connections{{{SEL}}})", "open")],
            "short",
            description="Authenticated WebSocket connections.",
        ),
        panel(
            "Sends/s",
            [
                (f'sum(rate(chat_ws_frames_in_total{{{SEL},type="send"}}[{RATE}]))', "ws"),
                (f"sum(rate(chat_http_requests_total{{{SEL},{HTTP_SEND}}}[{RATE}]))", "http"),
            ],
            "reqps",
            description="`send` frames over WebSocket; `POST .../messages` over HTTP (bots).",
        ),
        panel(
            "Deliveries/s",
            [
                (f"sum(rate(chat_deliveries_total{{{SEL}}}[{RATE}]))", "deliveries"),
                (f"sum(rate(chat_replayed_events_total{{{SEL}}}[{RATE}]))", "of which replayed"),
            ],
            "ops",
        ),
        panel(
            "Send → deliver latency",
            [(_quantile(0.5, deliver), "p50"), (_quantile(0.99, deliver), "p99")],
            "s",
            description="Objective: p99 under 250 ms.",
            thresholds=((None, "green"), (0.25, "red")),
        ),
        panel(
            "Ack latency p99",
            [(_quantile(0.99, "chat_send_to_ack_seconds"), "p99")],
            "s",
            thresholds=((None, "green"), (0.1, "yellow"), (0.5, "red")),
        ),
        panel(
            "Errors by code",
            [
                (
                    f"sum by (transport, code) (rate(chat_errors_total{{{SEL}}}[{RATE}]))",
                    "{{transport}} {{code}}",
                )
            ],
            "reqps",
        ),
        panel(
            "Closes by code",
            [(f"sum by (code) (rate(chat_ws_closes_total{{{SEL}}}[{RATE}]))", "{{code}}")],
            "ops",
        ),
        panel(
            "Persistence lag",
            [(f"max(chat_persist_lag_seconds{{{SEL}}})", "oldest unarchived")],
            "s",
            description="Age of the oldest event not yet archived (last sweep).",
            thresholds=((None, "green"), (60, "yellow"), (300, "red")),
        ),
        panel("Unarchived events", [(f"max(chat_persist_lag_events{{{SEL}}})", "events")], "short"),
        panel(
            "Queue depth",
            [(f"max by (queue) (chat_queue_messages{{{SEL}}})", "{{queue}}")],
            "short",
        ),
        panel(
            "Dead letters",
            [(f"max by (queue) (chat_queue_dead_letters{{{SEL}}})", "{{queue}}")],
            "short",
            kind="stat",
            thresholds=((None, "green"), (1, "red")),
        ),
        panel(
            "Store latency p99",
            [(_quantile(0.99, "chat_store_call_duration_seconds", "le, port"), "{{port}}")],
            "s",
            thresholds=((None, "green"), (0.05, "yellow"), (0.25, "red")),
        ),
    ]


def component_panels() -> list[Panel]:
    pods = 'namespace="$namespace",service="$chatcluster-$component"'
    return [
        panel(
            "CPU",
            [(f"sum by (pod) (rate(process_cpu_seconds_total{{{pods}}}[{RATE}]))", "{{pod}}")],
            "percentunit",
        ),
        panel(
            "Resident memory",
            [(f"sum by (pod) (process_resident_memory_bytes{{{pods}}})", "{{pod}}")],
            "bytes",
        ),
        panel(
            "HTTP p99 by route",
            [
                (
                    _quantile(0.99, "chat_http_request_duration_seconds", "le, route", pods),
                    "{{route}}",
                )
            ],
            "s",
        ),
        panel(
            "Event-loop lag p99",
            [
                (
                    _quantile(0.99, "chat_event_loop_lag_seconds", "le, pod", pods),
                    "{{pod}}",
                )
            ],
            "s",
            thresholds=((None, "green"), (0.05, "yellow"), (0.25, "red")),
        ),
        panel(
            "Frames in by type",
            [(f"sum by (type) (rate(chat_ws_frames_in_total{{{pods}}}[{RATE}]))", "{{type}}")],
            "ops",
        ),
        panel(
            "Outbound queue bytes",
            [(f"sum by (pod) (chat_ws_outbound_queue_bytes{{{pods}}})", "{{pod}}")],
            "bytes",
        ),
        panel(
            "Connection churn",
            [
                (f"sum(rate(chat_ws_connects_total{{{pods}}}[{RATE}]))", "connects"),
                (f"sum(rate(chat_ws_disconnects_total{{{pods}}}[{RATE}]))", "disconnects"),
            ],
            "ops",
        ),
        panel(
            "Auth failures by reason",
            [
                (
                    _rate("chat_auth_failures_total", pods, "transport, reason"),
                    "{{transport}} {{reason}}",
                )
            ],
            "ops",
        ),
        panel(
            "Gap fills, resets, not recoverable",
            [
                (f"sum(rate(chat_gap_fills_total{{{pods}}}[{RATE}]))", "gap fills"),
                (f"sum(rate(chat_bus_resets_total{{{pods}}}[{RATE}]))", "bus resets"),
                (
                    f"sum(rate(chat_resume_not_recoverable_total{{{pods}}}[{RATE}]))",
                    "not recoverable",
                ),
            ],
            "ops",
        ),
        panel(
            "Store errors",
            [
                (
                    f"sum by (port, method) (rate(chat_store_errors_total{{{pods}}}[{RATE}]))",
                    "{{port}}.{{method}}",
                )
            ],
            "ops",
        ),
        panel(
            "Jobs by actor and outcome",
            [(_rate("chat_jobs_total", pods, "actor, outcome"), "{{actor}} {{outcome}}")],
            "ops",
        ),
        panel(
            "Job run time p99",
            [(_quantile(0.99, "chat_job_duration_seconds", "le, actor", pods), "{{actor}}")],
            "s",
        ),
        panel(
            "Worker processes", [(f"sum(chat_worker_processes{{{pods}}})", "processes")], "short"
        ),
        panel(
            "Build",
            [(f"count by (version) (chat_build_info{{{pods}}})", "{{version}}")],
            "short",
            kind="stat",
        ),
    ]


def operator_panels() -> list[Panel]:
    return [
        panel(
            "Reconciles by result",
            [
                (
                    f"sum by (result) (rate(chatcluster_operator_reconciles_total[{RATE}]))",
                    "{{result}}",
                )
            ],
            "ops",
        ),
        panel(
            "Reconcile p99",
            [
                (
                    _quantile(0.99, "chatcluster_operator_reconcile_seconds", sel=""),
                    "p99",
                )
            ],
            "s",
        ),
        panel(
            "Child changes",
            [
                (
                    _rate("chatcluster_operator_child_changes_total", "", "kind, action"),
                    "{{kind}} {{action}}",
                )
            ],
            "ops",
        ),
        panel(
            "ChatClusters ready",
            [
                (
                    'sum(chatcluster_operator_cluster_ready{namespace=~"$namespace",name=~"$chatcluster"})',
                    "ready",
                ),
                (
                    'count(chatcluster_operator_cluster_ready{namespace=~"$namespace",name=~"$chatcluster"})',
                    "total",
                ),
            ],
            "short",
            kind="stat",
        ),
    ]


CHAT_NAMESPACES = "label_values(chat_build_info, namespace)"
CHAT_CLUSTERS = 'label_values(chat_build_info{namespace="$namespace"}, service)'
CLUSTER_REGEX = "/^(.*)-(api|ws|workers)$/"


def overview(default_cluster: str | None = None, uid: str = "chat-overview") -> dict[str, Any]:
    return _board(
        uid,
        "chatcluster: service overview",
        overview_panels(),
        _variables(CHAT_NAMESPACES, CHAT_CLUSTERS, CLUSTER_REGEX, default_cluster),
    )


def components() -> dict[str, Any]:
    variables = _variables(CHAT_NAMESPACES, CHAT_CLUSTERS, CLUSTER_REGEX, None)
    variables.append(
        {
            "name": "component",
            "label": "Component",
            "type": "custom",
            "query": "api,ws,workers",
            "current": {"text": "ws", "value": "ws"},
        }
    )
    return _board("chat-components", "chatcluster: components", component_panels(), variables)


def operator() -> dict[str, Any]:
    query = 'label_values(chatcluster_operator_cluster_ready{namespace=~"$namespace"}, name)'
    variables = _variables(
        "label_values(chatcluster_operator_cluster_ready, namespace)", query, "", None
    )
    for v in variables[1:]:
        v["includeAll"] = True
        v["allValue"] = ".*"
    return _board("chatcluster-operator", "chatcluster: operator", operator_panels(), variables)


def all_boards() -> dict[str, dict[str, Any]]:
    """File name → dashboard, as the chart ships them."""
    return {
        "chat-overview.json": overview(),
        "chat-components.json": components(),
        "operator.json": operator(),
    }
