"""A multiprocess worker pod (`--processes 2`): the supervisor's one port also serves its own
`process_*` series and the children's sweep and job metrics; with CHAT_LOG_FORMAT=json the
spawned children log JSON lines too (they start with no logging configured)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from chat.config import Settings
from tests.support.fixtures import free_port

pytestmark = pytest.mark.cluster


def _scrape(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            return str(r.read().decode())
    except OSError:
        return ""


def test_worker_pod_metrics_and_json_logs(cluster_settings: Settings) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
    env.update(
        CHAT_BACKEND="cluster",
        CHAT_HOST="127.0.0.1",
        CHAT_LOG_FORMAT="json",
        CHAT_SWEEP_INTERVAL_S="0.5",
        REDIS_URL=cluster_settings.redis_url,
        POSTGRES_DSN=cluster_settings.postgres_dsn,
        MONGODB_URI=cluster_settings.mongodb_uri,
        MONGODB_DATABASE=cluster_settings.mongodb_database,
        CHAT_JWT_SECRET=cluster_settings.jwt_secret,
    )
    argv = [sys.executable, "-m", "chat", "worker", "--processes", "2", "--threads", "1"]
    proc = subprocess.Popen(
        [*argv, "--metrics-port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    wanted = (
        r"^process_cpu_seconds_total \d",
        r"^chat_sweeps_total [1-9]",
        r'^chat_jobs_total\{actor="sweep_backlog",outcome="ok",queue="maintenance"\} [1-9]',
        r'^chat_queue_messages\{queue="persist"\} \d',
    )
    try:
        deadline = time.monotonic() + 60
        text = ""
        while time.monotonic() < deadline and proc.poll() is None:
            text = _scrape(port)
            if all(re.search(w, text, re.M) for w in wanted):
                break
            time.sleep(0.2)  # polling interval, bounded by the deadline
        for w in wanted:
            assert re.search(w, text, re.M), (w, text[-3000:])
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()[-2000:]
    lines = [json.loads(line) for line in err.decode().splitlines() if line.strip()]
    ready = [line for line in lines if str(line["message"]).startswith("worker ready")]
    assert len(ready) == 2, lines[-10:]
    assert {"ts", "level", "logger"} <= ready[0].keys()
