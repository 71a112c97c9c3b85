"""Dashboards as code: the checked-in JSON is what the generator writes, every board has the
datasource/namespace/chatcluster variables, every panel a unit, thresholds and the datasource
variable, and the operator's per-cluster ConfigMap is the overview preset to that cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from chat_operator.builders import alerts, dashboards, monitoring

from monitoring import generate
from tests.observability import helm
from tests.operator.operator_examples import cluster_from, load_example

OVERVIEW_PANELS = {
    "Connections",
    "Sends/s",
    "Deliveries/s",
    "Send → deliver latency",
    "Ack latency p99",
    "Errors by code",
    "Closes by code",
    "Persistence lag",
    "Queue depth",
    "Dead letters",
    "Store latency p99",
}


def test_chart_dashboards_are_generated() -> None:
    for path, text in generate.dashboard_files().items():
        assert path.read_text() == text, f"{path.name} is stale: run python -m monitoring.generate"


@pytest.mark.parametrize("name", sorted(dashboards.all_boards()))
def test_variables_units_thresholds(name: str) -> None:
    board = dashboards.all_boards()[name]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert {"datasource", "namespace", "chatcluster"} <= variables.keys()
    assert variables["datasource"]["type"] == "datasource"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        defaults = panel["fieldConfig"]["defaults"]
        assert defaults["unit"], panel["title"]
        assert defaults["thresholds"]["steps"][0]["value"] is None
        assert panel["datasource"]["uid"] == "${datasource}"
        for target in panel["targets"]:
            expr = target["expr"]
            assert expr.count("(") == expr.count(")"), expr
            if name != "operator.json":
                assert 'namespace="$namespace"' in expr and "$chatcluster" in expr, expr


def test_overview_has_the_on_call_panels() -> None:
    titles = {p["title"] for p in dashboards.overview()["panels"]}
    assert titles >= OVERVIEW_PANELS
    latency = next(p for p in dashboards.overview()["panels"] if p["title"].startswith("Send →"))
    assert latency["fieldConfig"]["defaults"]["unit"] == "s"
    assert [s["value"] for s in latency["fieldConfig"]["defaults"]["thresholds"]["steps"]] == [
        None,
        0.25,
    ]


def test_operator_ships_the_overview_per_cluster() -> None:
    cluster = cluster_from(load_example("chatcluster-full.yaml"))
    config_map = monitoring.dashboard(cluster)
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    (text,) = config_map["data"].values()
    board = json.loads(text)
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["chatcluster"]["current"]["value"] == cluster.name
    assert variables["namespace"]["current"]["value"] == cluster.namespace
    assert {p["title"] for p in board["panels"]} >= OVERVIEW_PANELS
    # The old board read a series a bare registry never exported.
    assert all(
        'service=~"$instance' not in t["expr"] for p in board["panels"] for t in p["targets"]
    )


def test_chart_renders_the_generated_rules_and_dashboards(tmp_path: Path) -> None:
    """`helm template` (the pinned helm) with both switches on yields the PrometheusRule and one
    grafana_dashboard ConfigMap per board, unchanged by templating (`{{ $labels }}` stays)."""
    docs = helm.template(tmp_path, "prometheusRules.enabled=true", "grafanaDashboards.enabled=true")
    (rule,) = [d for d in docs if d["kind"] == "PrometheusRule"]
    assert rule["spec"]["groups"] == alerts.operator_groups()
    boards = {
        name: json.loads(text)
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["labels"].get("grafana_dashboard") == "1"
        for name, text in d["data"].items()
    }
    assert boards == dashboards.all_boards()
