"""The operator dashboard on real parts: Debian's Prometheus scrapes the operator (a local
process under the chart's ServiceAccount, on the real control plane) the way the chart's
ServiceMonitor has the Prometheus Operator scrape it, and every operator panel's query returns
data for a ChatCluster it made Ready.

The target carries the labels a ServiceMonitor target gets (`namespace` is the operator's own),
and `honor_labels` is the chart's `honorLabels`: without it Prometheus renames the operator's
per-cluster `namespace` label to `exported_namespace`, and the board's and ChatClusterNotReady's
`namespace` would name the operator's namespace instead of the cluster's.

With `CHATCLUSTER_RENDER_PANELS=1` it also renders the operator board's pictures
(monitoring/panels.py)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chat_operator.builders import dashboards

from monitoring import panels
from tests.k8s import conftest as k8s
from tests.k8s.cluster_helpers import apply_example, wait_ready
from tests.k8s.controlplane import ControlPlane
from tests.k8s.fake_kubelet import FakeKubelet
from tests.k8s.k8s_binaries import Binaries
from tests.k8s.operator_process import OperatorProcess
from tests.k8s.support import CHART, OPERATOR_NAMESPACE, RELEASE, SECRETS, SERVICE_ACCOUNT
from tests.observability import helm
from tests.observability.prometheus import Prometheus, Target, poll, running_prometheus

pytestmark = pytest.mark.k8s

NAME = "chat"  # the minimal example's name
RENDER_SPAN_S = 60.0
"""When rendering: how long the pictures' run lasts after the cluster is Ready (it shapes
the data; nothing waits on it for correctness)."""


# The control plane, chart and operator of tests/k8s/conftest.py, but for this module only: a
# session fixture imported here would be a second session-long control plane (with an operator
# resyncing every second) beside tests/k8s' own for the rest of a full run.
binaries = k8s.binaries


@pytest.fixture(scope="module")
def plane(binaries: Binaries, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    control = ControlPlane(binaries, tmp_path_factory.mktemp("k8s"))
    try:
        control.start()
        control.helm(
            "install", RELEASE, str(CHART), "--namespace", OPERATOR_NAMESPACE, "--create-namespace"
        )
        control.kubectl(
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/chatclusters.chatcluster.dev",
        )
        yield control
    finally:
        control.stop()


@pytest.fixture(scope="module")
def operator(
    plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[OperatorProcess, FakeKubelet]]:
    kubelet = FakeKubelet(plane.admin_kubeconfig)
    kubelet.start()
    proc = OperatorProcess(
        plane.token_kubeconfig(OPERATOR_NAMESPACE, SERVICE_ACCOUNT),
        tmp_path_factory.mktemp("operator"),
    )
    try:
        proc.start()
        yield proc, kubelet
    finally:
        proc.stop()
        kubelet.stop()


def _chart_honor_labels(tmp_path: Path) -> bool:
    docs = helm.template(tmp_path, "metrics.serviceMonitor.enabled=true")
    (monitor,) = [d for d in docs if d["kind"] == "ServiceMonitor"]
    (endpoint,) = monitor["spec"]["endpoints"]
    return bool(endpoint.get("honorLabels", False))


def _missing(prometheus: Prometheus, namespace: str) -> list[str]:
    return [
        f"{panel['title']}: {expr}"
        for panel in dashboards.operator()["panels"]
        for target in panel["targets"]
        if not prometheus.query(expr := panels.substitute(target["expr"], namespace, NAME))
    ]


def test_operator_board_has_data_on_a_real_prometheus(
    plane: ControlPlane, operator: tuple[OperatorProcess, FakeKubelet], tmp_path: Path
) -> None:
    process, _ = operator
    namespace = "obs"
    plane.kubectl("create", "namespace", namespace)
    for secret, data in SECRETS.items():  # the Secrets the examples reference
        literals = [f"--from-literal={k}={v}" for k, v in data.items()]
        plane.kubectl("create", "secret", "generic", secret, "-n", namespace, *literals)
    target = Target(
        f"127.0.0.1:{process.metrics_port}",
        {
            "namespace": OPERATOR_NAMESPACE,
            "service": "chatcluster-operator-metrics",
            "pod": process.identity,
        },
    )
    honor = _chart_honor_labels(tmp_path)
    with running_prometheus(tmp_path / "prom", [target], [], honor_labels=honor) as prom:
        started = time.time()
        # Scraped before the cluster exists, so its creates show as changes, not as history.
        poll(lambda: prom.query("up == 1"), 30, "the operator scraped")
        apply_example(plane, namespace, "chatcluster-minimal.yaml")
        wait_ready(plane, namespace, NAME)
        missing: list[str] = []

        def every_panel_has_data() -> bool:
            missing[:] = _missing(prom, namespace)
            return not missing

        try:
            poll(every_panel_has_data, 60, "every operator panel has data")
        except AssertionError:
            pytest.fail("operator panels without data:\n" + "\n".join(missing))
        ready = prom.query(f'chatcluster_operator_cluster_ready{{namespace="{namespace}"}}')
        assert [r["metric"]["name"] for r in ready] == [NAME]
        if os.environ.get("CHATCLUSTER_RENDER_PANELS") == "1":
            asyncio.run(asyncio.sleep(max(0.0, started + RENDER_SPAN_S - time.time())))
            end = time.time()

            def query(expr: str) -> list[dict[str, Any]]:
                return prom.query_range(expr, started, end, 1)

            found = panels.collect(query, namespace, NAME, panels.OPERATOR_BOARDS)
            assert all(p["series"] for p in found), [p["title"] for p in found]
            panels.save(started, end, found, panels.OPERATOR_RESULTS)
            panels.write(panels.saved())
