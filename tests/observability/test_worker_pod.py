"""A multiprocess worker pod (`--processes 2`): the supervisor's one port also serves its own
`process_*` series and the children's sweep and job metrics; with CHAT_LOG_FORMAT=json the
spawned children log JSON lines too (they start with no logging configured)."""

from __future__ import annotations

import json
import re

import pytest

from chat.config import Settings
from tests.support.worker_pod import run_worker_pod

pytestmark = pytest.mark.cluster

WANTED = (
    r"^process_cpu_seconds_total \d",
    r"^chat_sweeps_total [1-9]",
    r'^chat_jobs_total\{actor="sweep_backlog",outcome="ok",queue="maintenance"\} [1-9]',
    r'^chat_queue_messages\{queue="persist"\} \d',
)


def test_worker_pod_metrics_and_json_logs(cluster_settings: Settings) -> None:
    run = run_worker_pod(
        cluster_settings, WANTED, CHAT_LOG_FORMAT="json", CHAT_SWEEP_INTERVAL_S="0.5"
    )
    for w in WANTED:
        assert re.search(w, run.metrics, re.M), (w, run.metrics[-3000:])
    assert run.returncode == 0, run.stderr[-2000:]
    lines = [json.loads(line) for line in run.stderr.splitlines() if line.strip()]
    ready = [line for line in lines if str(line["message"]).startswith("worker ready")]
    assert len(ready) == 2, lines[-10:]
    assert {"ts", "level", "logger"} <= ready[0].keys()
