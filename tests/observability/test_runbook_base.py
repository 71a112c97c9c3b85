"""The runbook base URL is the platform team's: the chart's `runbookBaseUrl` reaches the
operator as CHATCLUSTER_RUNBOOK_BASE_URL (read at start-up) and the chart's own rule; the
PrometheusRule the operator builds per ChatCluster links under it."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from chat_operator.builders import children
from chat_operator.builders.alerts import DEFAULT_RUNBOOK_BASE_URL, operator_groups
from chat_operator.builders.common import Rollout
from chat_operator.settings import RUNBOOK_BASE_URL_ENV, OperatorSettings, SettingsError

from tests.observability import helm
from tests.operator.operator_examples import cluster_from, load_example

WIKI = "https://wiki.example.com/ops/chat-runbooks"


def _runbook_urls(groups: list[dict[str, Any]]) -> list[str]:
    return [r["annotations"]["runbook_url"] for g in groups for r in g["rules"]]


def test_default_when_unset_or_empty() -> None:
    assert OperatorSettings.from_environ({}).runbook_base_url == DEFAULT_RUNBOOK_BASE_URL
    assert OperatorSettings.from_environ({RUNBOOK_BASE_URL_ENV: " "}) == OperatorSettings()
    assert OperatorSettings.from_environ({RUNBOOK_BASE_URL_ENV: WIKI}).runbook_base_url == WIKI


@pytest.mark.parametrize(
    "value",
    [
        "wiki.example.com/runbooks",
        "ftp://wiki.example.com/r",
        f"{WIKI}#top",
        f"{WIKI}#",
        "https://",
    ],
)
def test_a_bad_base_is_refused_naming_the_variable(value: str) -> None:
    with pytest.raises(SettingsError, match=RUNBOOK_BASE_URL_ENV):
        OperatorSettings.from_environ({RUNBOOK_BASE_URL_ENV: value})


def test_the_operator_refuses_a_bad_base_at_start_up(tmp_path: Path) -> None:
    """Before it talks to any API server (there is none here)."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHONPATH": os.pathsep.join(sys.path),
        RUNBOOK_BASE_URL_ENV: "runbooks.md",
    }
    out = subprocess.run(
        [sys.executable, "-m", "chat_operator", "--metrics-port=0", "--liveness="],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode != 0
    assert f"{RUNBOOK_BASE_URL_ENV}='runbooks.md': must be an absolute http(s) URL" in out.stderr


def test_the_operator_built_prometheus_rule_links_under_the_configured_base() -> None:
    cluster = cluster_from(load_example("chatcluster-full.yaml"))
    rollout = Rollout(
        image="img:1",
        secrets_checksum="x",
        service_monitor_available=True,
        prometheus_rule_available=True,
    )
    settings = OperatorSettings.from_environ({RUNBOOK_BASE_URL_ENV: WIKI})
    for base, expected in ((None, DEFAULT_RUNBOOK_BASE_URL), (settings.runbook_base_url, WIKI)):
        built = children(
            cluster, rollout if base is None else replace(rollout, runbook_base_url=base)
        )
        (rule,) = [m for m in built if m["kind"] == "PrometheusRule"]
        urls = _runbook_urls(rule["spec"]["groups"])
        assert urls and all(u.startswith(f"{expected}#chat") for u in urls), urls


def _operator_env(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value") for e in container["env"]}


def test_the_chart_passes_the_base_to_the_operator_and_its_own_rule(tmp_path: Path) -> None:
    default = helm.template(tmp_path, "prometheusRules.enabled=true")
    assert _operator_env(default)[RUNBOOK_BASE_URL_ENV] == DEFAULT_RUNBOOK_BASE_URL
    docs = helm.template(tmp_path, "prometheusRules.enabled=true", f"runbookBaseUrl={WIKI}")
    assert _operator_env(docs)[RUNBOOK_BASE_URL_ENV] == WIKI
    (rule,) = [d for d in docs if d["kind"] == "PrometheusRule"]
    assert rule["spec"]["groups"] == operator_groups(WIKI)
    assert all(u.startswith(f"{WIKI}#") for u in _runbook_urls(rule["spec"]["groups"]))


def test_the_chart_refuses_a_base_with_a_fragment(tmp_path: Path) -> None:
    with pytest.raises(subprocess.CalledProcessError) as refused:
        helm.template(tmp_path, f"runbookBaseUrl={WIKI}#top")
    assert "runbookBaseUrl" in refused.value.stderr
