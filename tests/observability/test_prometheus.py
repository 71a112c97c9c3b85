"""Proof on real parts: Debian's Prometheus scrapes a running devcluster (gateway, API and
worker processes on real Redis, PostgreSQL and FerretDB) while load runs. Every dashboard
panel's query returns data through Prometheus' HTTP API, and the alerts fire when the worker
stops and resolve when it is back (the test's copy of the rules has `for: 1s`).

With `CHATCLUSTER_RENDER_PANELS=1` it then range-queries the chat boards' panels over the
whole run and renders the pictures docs/observability.md shows (monitoring/panels.py); without
it, nothing in docs/ is written, so CI never rewrites docs."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import time
from pathlib import Path
from typing import Any

import pytest
from chat_operator.builders import alerts, dashboards

from monitoring import panels
from tests.multiprocess.conftest import ClusterFactory
from tests.observability.prometheus import Prometheus, Target, poll, running_prometheus
from tests.support.clients import Api, Ws
from tools.devcluster.cluster import AppCluster, Backing
from tools.harness.supervisor import Proc

pytestmark = pytest.mark.cluster

NS, NAME = "devns", "demo"


def _targets(cluster: AppCluster) -> list[Target]:
    def metrics_port(p: Proc) -> str:
        return p.argv[p.argv.index("--metrics-port") + 1]

    groups = (("ws", cluster.ws), ("api", cluster.api), ("workers", cluster.worker))
    return [
        Target(
            f"127.0.0.1:{metrics_port(p)}",
            {"namespace": NS, "service": f"{NAME}-{component}", "pod": p.name},
        )
        for component, procs in groups
        for p in procs
    ]


def _test_rules() -> list[dict[str, Any]]:
    groups = copy.deepcopy(alerts.cluster_groups(NS, NAME))
    for group in groups:
        for rule in group["rules"]:
            rule["for"] = "1s"
    return groups


def _queries() -> list[tuple[str, str, str]]:
    """(board, panel, PromQL with the variables set), the component board once per component."""
    out = []
    for name in ("chat-overview.json", "chat-components.json"):
        board = dashboards.all_boards()[name]
        for panel in board["panels"]:
            for target in panel["targets"]:
                expr = panels.substitute(target["expr"], NS, NAME)
                if "$component" in expr:
                    alternatives = [panels.substitute(expr, NS, NAME, c) for c in panels.COMPONENTS]
                    out.append((name, panel["title"], " or ".join(f"({e})" for e in alternatives)))
                else:
                    out.append((name, panel["title"], expr))
    return out


# When rendering, the run is stretched so the pictures show a steady load, the worker's
# outage and its recovery as readable stretches (these waits shape the data; nothing waits on
# them for correctness).
RENDER_BEFORE_S, RENDER_OUTAGE_S, RENDER_AFTER_S = 75.0, 20.0, 30.0


async def _span(since: float, seconds: float) -> None:
    await asyncio.sleep(max(0.0, since + seconds - time.time()))


def _render_pictures(prometheus: Prometheus, start: float) -> None:
    """Every panel's queries over the run (sends, the worker stopped and back), saved with
    the pictures rendered from them."""
    end = time.time()

    def query(expr: str) -> list[dict[str, Any]]:
        return prometheus.query_range(expr, start, end, 1)

    found = panels.collect(query, NS, NAME, panels.CHAT_BOARDS)
    assert all(p["series"] for p in found), [p["title"] for p in found if not p["series"]]
    panels.save(start, end, found, panels.RESULTS)
    panels.write(panels.saved())


async def _load(cluster: AppCluster, api: Api, stop: asyncio.Event) -> None:
    alice, bob = await api.register(), await api.register()
    cid = await api.dm(alice, bob)
    wa = await Ws.connect(cluster.ws_url, cluster.url)
    await wa.auth(alice.access)
    wb = await Ws.connect(cluster.ws_url, cluster.url)
    await wb.auth(bob.access)
    # An error frame (not a member) and a rejected auth (close 4401): the labelled series.
    await wa.request({"type": "send", "conversation_id": "nope", "client_id": "x", "body": "x"})
    bad = await Ws.connect(cluster.ws_url, cluster.url)
    await bad.send({"type": "auth", "token": "not-a-token"})
    await bad.wait_closed()
    i = 0
    while not stop.is_set():
        await wa.request(
            {"type": "send", "conversation_id": cid, "client_id": f"l{i}", "body": "x"}
        )
        if i % 10 == 0:  # a bot's send over HTTP: the Sends/s panel's http series
            await api.send(bob, cid, "x", client_id=f"h{i}")
        i += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.05)  # the load's pace, not synchronisation
    await wa.close()
    await wb.close()


def _missing(prometheus: Prometheus) -> list[str]:
    return [f"{b}: {title}: {q}" for b, title, q in _queries() if not prometheus.query(q)]


async def test_dashboards_have_data_and_alerts_fire_on_a_real_prometheus(
    make_cluster: ClusterFactory, backing: Backing, tmp_path: Path
) -> None:
    cluster = await asyncio.to_thread(make_cluster, backing, gateways=1, workers=1)
    api = Api(cluster.url)
    stop = asyncio.Event()
    load = asyncio.create_task(_load(cluster, api, stop))
    try:
        with running_prometheus(tmp_path / "prom", _targets(cluster), _test_rules()) as prom:
            started = time.time()
            missing: list[str] = []

            def every_panel_has_data() -> bool:
                missing[:] = _missing(prom)
                return not missing

            try:
                await asyncio.to_thread(poll, every_panel_has_data, 90, "every panel has data")
            except AssertionError:
                pytest.fail("panels without data:\n" + "\n".join(missing))
            assert not prom.firing("ChatNoWorkers")
            # The operator board has no operator here: its queries must at least be valid.
            for panel in dashboards.operator()["panels"]:
                for target in panel["targets"]:
                    expr = target["expr"].replace("$__rate_interval", "30s")
                    prom.query(expr.replace("$namespace", NS).replace("$chatcluster", NAME))

            render = os.environ.get("CHATCLUSTER_RENDER_PANELS") == "1"
            if render:
                await _span(started, RENDER_BEFORE_S)
            worker = cluster.worker[0]
            await asyncio.to_thread(worker.stop)
            await asyncio.to_thread(poll, lambda: prom.firing("ChatNoWorkers"), 30, "firing")
            assert prom.firing("ChatTargetDown")
            if render:
                await _span(time.time(), RENDER_OUTAGE_S)
            await asyncio.to_thread(worker.start)
            await asyncio.to_thread(
                poll, lambda: not prom.firing("ChatNoWorkers"), 30, "ChatNoWorkers resolved"
            )
            await asyncio.to_thread(
                poll, lambda: not prom.firing("ChatTargetDown"), 30, "ChatTargetDown resolved"
            )
            if render:
                await _span(time.time(), RENDER_AFTER_S)
                await asyncio.to_thread(_render_pictures, prom, started)
    finally:
        stop.set()
        await load
        await api.close()
