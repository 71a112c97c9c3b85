"""A worker pod declares one metrics port: with --processes 2 that one port serves the samples
of both processes (prometheus_client multiprocess mode), and the children bind none."""

from __future__ import annotations

import re

from chat.config import Settings
from tests.support.worker_pod import run_worker_pod

PROCESSES = r"^chat_worker_processes 2\.0$"


def test_two_processes_one_metrics_port(cluster_settings: Settings) -> None:
    run = run_worker_pod(cluster_settings, (PROCESSES,))
    text = run.metrics
    assert re.search(PROCESSES, text, re.M), text or run.returncode
    # Summed, not one process's registry: the live gauge has no per-process series.
    assert "pid=" not in text.split("chat_worker_processes", 1)[1].split("\n# ", 1)[0]
    assert run.returncode == 0, run.stderr[-2000:]
