"""The alerting rules, checked and unit-tested by the real promtool (Debian's package): every
alert fires on the series that should trigger it and stays quiet on healthy ones."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from chat_operator.builders import alerts

from chat.api.conversations import MessagesHandler
from monitoring import generate

PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian prometheus) missing")

NS, NAME = "chat", "demo"
T = {"namespace": NS}
API = {**T, "service": f"{NAME}-api", "pod": "api-0"}
WS = {**T, "service": f"{NAME}-ws", "pod": "ws-0"}
WORKERS = {**T, "service": f"{NAME}-workers", "pod": "w-0"}


def series(metric: str, labels: dict[str, str], values: str) -> dict[str, str]:
    body = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return {"series": f"{metric}{{{body}}}", "values": values}


def http_sends(status: str, values: str) -> dict[str, str]:
    """The HTTP send route's requests with one status, as chat/api/base.py counts them."""
    labels = {**API, "route": MessagesHandler.route, "method": "POST", "status": status}
    return series("chat_http_requests_total", labels, values)


def healthy() -> list[dict[str, str]]:
    """Everything up, sends flowing on both transports, no server errors (HTTP client errors
    do not count), fast deliveries, no lag: no alert fires."""
    out = [series("up", t, "1+0x480") for t in (API, WS, WORKERS)]
    out.append(series("chat_ws_frames_in_total", {**WS, "type": "send"}, "0+600x480"))
    out.append(series("chat_errors_total", {**WS, "code": "internal", "transport": "ws"}, "0x480"))
    out += [http_sends("201", "0+60x480"), http_sends("400", "0+60x480")]
    out += [http_sends("500", "0x480"), http_sends("503", "0x480")]
    for le, per_min in (("0.1", 600), ("0.25", 600), ("5", 600), ("+Inf", 600)):
        out.append(
            series("chat_send_to_deliver_seconds_bucket", {**WS, "le": le}, f"0+{per_min}x480")
        )
    out.append(series("chat_persist_lag_seconds", WORKERS, "0x480"))
    out.append(series("chat_persist_lag_events", WORKERS, "0x480"))
    out.append(series("chat_queue_dead_letters", {**WORKERS, "queue": "persist"}, "0x480"))
    out.append(series("chat_ws_closes_total", {**WS, "code": "4008"}, "0x480"))
    return out


def replace(base: list[dict[str, str]], new: dict[str, str]) -> list[dict[str, str]]:
    return [s for s in base if s["series"] != new["series"]] + [new]


def without(base: list[dict[str, str]], labels: dict[str, str]) -> list[dict[str, str]]:
    body = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return [s for s in base if s["series"] != f"up{{{body}}}"]


# alert -> the series that make it fire (from `healthy()`), evaluated at 6 h.
FIRING: dict[str, list[dict[str, str]]] = {
    "ChatNoReadyGateways": replace(healthy(), series("up", WS, "0x480")),
    "ChatNoWorkers": without(healthy(), WORKERS),
    "ChatTargetDown": replace(healthy(), series("up", API, "0x480")),
    "ChatDeliveryLatencyHigh": replace(
        replace(
            healthy(),
            series("chat_send_to_deliver_seconds_bucket", {**WS, "le": "0.1"}, "0+300x480"),
        ),
        series("chat_send_to_deliver_seconds_bucket", {**WS, "le": "0.25"}, "0+300x480"),
    ),
    "ChatErrorRatioHigh": replace(
        healthy(),
        series("chat_errors_total", {**WS, "code": "internal", "transport": "ws"}, "0+60x480"),
    ),
    "ChatSendAvailabilityBurnFast": replace(
        healthy(),
        series("chat_errors_total", {**WS, "code": "internal", "transport": "ws"}, "0+60x480"),
    ),
    "ChatSendAvailabilityBurnSlow": replace(
        healthy(),
        series("chat_errors_total", {**WS, "code": "internal", "transport": "ws"}, "0+6x480"),
    ),
    "ChatPersistenceLagGrowing": replace(
        replace(healthy(), series("chat_persist_lag_seconds", WORKERS, "0+60x480")),
        series("chat_persist_lag_events", WORKERS, "0+10x480"),
    ),
    "ChatDeadLetters": replace(
        healthy(), series("chat_queue_dead_letters", {**WORKERS, "queue": "persist"}, "3x480")
    ),
    "ChatSlowConsumerClosesSpiking": replace(
        healthy(), series("chat_ws_closes_total", {**WS, "code": "4008"}, "0+60x480")
    ),
}
# The send/ack SLI counts HTTP sends too: HTTP server errors alone burn the budget, also on a
# cluster with no WebSocket send series at all (each side of the ratio is `or vector(0)`).
SLI_ALERTS = ("ChatErrorRatioHigh", "ChatSendAvailabilityBurnFast", "ChatSendAvailabilityBurnSlow")
HTTP_ONLY = [series("up", t, "1+0x480") for t in (API, WS, WORKERS)] + [
    http_sends("201", "0+600x480"),
    http_sends("429", "0+300x480"),
]
HTTP_FIRING: dict[str, list[dict[str, str]]] = {
    "with ws traffic: 60 of 780 sends/min answered 503": replace(
        healthy(), http_sends("503", "0+60x480")
    ),
    "http only: 60 of 960 sends/min answered 500": replace(
        HTTP_ONLY, http_sends("500", "0+60x480")
    ),
}
HTTP_QUIET: dict[str, list[dict[str, str]]] = {
    "http only, client errors (429) only": HTTP_ONLY,
    # 1 in 1380 sends/min over 6 h: under every burn threshold (budget 0.1 %, slow 6x).
    "with ws traffic: one 500 in 1380 sends/min": replace(
        replace(healthy(), http_sends("201", "0+719x480")), http_sends("500", "0+1x480")
    ),
}
OPERATOR_FIRING = {
    "ChatClusterOperatorReconcileErrors": [
        series("chatcluster_operator_reconciles_total", {"result": "error"}, "0+1x480")
    ],
    "ChatClusterNotReady": [
        series("chatcluster_operator_cluster_ready", {"namespace": NS, "name": NAME}, "0x480")
    ],
}
OPERATOR_QUIET = [
    series("chatcluster_operator_reconciles_total", {"result": "error"}, "0x480"),
    series("chatcluster_operator_reconciles_total", {"result": "ok"}, "0+1x480"),
    series("chatcluster_operator_cluster_ready", {"namespace": NS, "name": NAME}, "1x480"),
]


def _run_promtool(
    tmp_path: Path, groups: list[dict[str, Any]], tests: list[dict[str, Any]]
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": groups}))
    check = subprocess.run([PROMTOOL, "check", "rules", str(rules)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    spec = tmp_path / "tests.yaml"
    spec.write_text(
        yaml.safe_dump({"rule_files": [rules.name], "evaluation_interval": "1m", "tests": tests})
    )
    result = subprocess.run(
        [PROMTOOL, "test", "rules", str(spec)], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _cases(
    names: list[str], firing: dict[str, list[dict[str, str]]], quiet: list[dict[str, str]]
) -> list[dict[str, Any]]:
    tests: list[dict[str, Any]] = []
    for name in names:
        tests.append(
            {
                "interval": "1m",
                "input_series": quiet,
                "alert_rule_test": [{"eval_time": "6h", "alertname": name, "exp_alerts": []}],
            }
        )
        # Firing: promtool compares labels exactly, so read them from the one that fires.
        tests.append(
            {
                "interval": "1m",
                "input_series": firing[name],
                "alert_rule_test": [
                    {
                        "eval_time": "6h",
                        "alertname": name,
                        "exp_alerts": [
                            {**e, "exp_annotations": _annotations(name, e["exp_labels"])}
                            for e in EXPECTED[name]
                        ],
                    }
                ],
            }
        )
    return tests


def _exp(labels: dict[str, str]) -> list[dict[str, Any]]:
    return [{"exp_labels": labels}]


def _annotations(name: str, labels: dict[str, str]) -> dict[str, str]:
    """The rule's annotations as Prometheus renders them (they template labels only)."""
    rule = next(
        a for a in alerts.cluster_alerts(NS, NAME) + alerts.operator_alerts() if a.name == name
    )
    out = {}
    for key, text in rule.rule()["annotations"].items():
        for label, value in labels.items():
            text = text.replace(f"{{{{ $labels.{label} }}}}", value)
        assert "{{" not in text, text
        out[key] = text
    return out


EXPECTED: dict[str, list[dict[str, Any]]] = {
    "ChatNoReadyGateways": _exp({"severity": "critical"}),
    "ChatNoWorkers": _exp({"severity": "critical"}),
    "ChatTargetDown": _exp({"severity": "warning", **API}),
    "ChatDeliveryLatencyHigh": _exp({"severity": "warning"}),
    "ChatErrorRatioHigh": _exp({"severity": "warning"}),
    "ChatSendAvailabilityBurnFast": _exp({"severity": "critical"}),
    "ChatSendAvailabilityBurnSlow": _exp({"severity": "warning"}),
    "ChatPersistenceLagGrowing": _exp({"severity": "warning"}),
    "ChatDeadLetters": _exp({"severity": "warning", "queue": "persist"}),
    "ChatSlowConsumerClosesSpiking": _exp({"severity": "warning"}),
    "ChatClusterOperatorReconcileErrors": _exp({"severity": "warning"}),
    "ChatClusterNotReady": _exp({"severity": "warning", "namespace": NS, "name": NAME}),
}


def test_every_alert_has_annotations_and_a_runbook_section() -> None:
    runbooks = (Path(__file__).resolve().parents[2] / "docs" / "runbooks.md").read_text()
    everything = alerts.cluster_alerts(NS, NAME) + alerts.operator_alerts()
    assert {a.name for a in everything} == set(EXPECTED)
    for alert in everything:
        rule = alert.rule()
        assert rule["labels"]["severity"] in ("critical", "warning")
        assert {"summary", "description", "runbook_url"} <= rule["annotations"].keys()
        anchor = rule["annotations"]["runbook_url"].split("#", 1)[1]
        assert f"## {alert.name}\n" in runbooks and anchor == alert.name.lower()


def test_cluster_alerts_fire_and_stay_quiet(tmp_path: Path) -> None:
    names = [a.name for a in alerts.cluster_alerts(NS, NAME)]
    _run_promtool(tmp_path, alerts.cluster_groups(NS, NAME), _cases(names, FIRING, healthy()))


def test_send_availability_counts_http_sends(tmp_path: Path) -> None:
    """HTTP 5xx answers on the send route fire the SLI alerts; HTTP client errors and a rate
    under the budget do not."""
    tests: list[dict[str, Any]] = []
    for name in SLI_ALERTS:
        for inputs in HTTP_FIRING.values():
            tests.append(
                {
                    "interval": "1m",
                    "input_series": inputs,
                    "alert_rule_test": [
                        {
                            "eval_time": "6h",
                            "alertname": name,
                            "exp_alerts": [
                                {**e, "exp_annotations": _annotations(name, e["exp_labels"])}
                                for e in EXPECTED[name]
                            ],
                        }
                    ],
                }
            )
        for inputs in HTTP_QUIET.values():
            tests.append(
                {
                    "interval": "1m",
                    "input_series": inputs,
                    "alert_rule_test": [{"eval_time": "6h", "alertname": name, "exp_alerts": []}],
                }
            )
    _run_promtool(tmp_path, alerts.cluster_groups(NS, NAME), tests)


def test_the_http_send_selector_names_the_send_route() -> None:
    assert f'route="{MessagesHandler.route}",method="POST"' == alerts.HTTP_SEND


def test_operator_alerts_fire_and_stay_quiet(tmp_path: Path) -> None:
    names = [a.name for a in alerts.operator_alerts()]
    _run_promtool(
        tmp_path, alerts.operator_groups(), _cases(names, OPERATOR_FIRING, OPERATOR_QUIET)
    )


def test_chart_rules_are_generated() -> None:
    assert generate.OPERATOR_RULES.read_text() == generate.operator_rules_yaml()


def test_operator_builds_a_prometheus_rule_per_cluster() -> None:
    """Only when the reconciler saw the PrometheusRule CRD (Rollout.prometheus_rule_available),
    with the cluster's own selectors, its monitoring labels and an owner reference."""
    from dataclasses import replace as dc_replace

    from chat_operator.builders import children
    from chat_operator.builders.common import Rollout

    from tests.operator.operator_examples import cluster_from, load_example

    cluster = cluster_from(load_example("chatcluster-full.yaml"))
    rollout = Rollout(image="img:1", secrets_checksum="x", service_monitor_available=True)
    assert not [m for m in children(cluster, rollout) if m["kind"] == "PrometheusRule"]
    built = [
        m
        for m in children(cluster, dc_replace(rollout, prometheus_rule_available=True))
        if m["kind"] == "PrometheusRule"
    ]
    assert len(built) == 1
    rule = built[0]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["labels"]["release"] == "prometheus"
    assert rule["metadata"]["ownerReferences"][0]["kind"] == "ChatCluster"
    exprs = [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]]
    ns, name = cluster.namespace, cluster.name
    assert all(f'namespace="{ns}"' in e for e in exprs)
    assert any(f'service="{name}-ws"' in e for e in exprs)
