"""A worker pod declares one metrics port: with --processes 2 that one port serves the samples
of both processes (prometheus_client multiprocess mode), and the children bind none."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

from chat.config import Settings
from tests.support.fixtures import free_port


def _scrape(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            return str(r.read().decode())
    except OSError:
        return ""


def test_two_processes_one_metrics_port(cluster_settings: Settings) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
    env.update(
        CHAT_BACKEND="cluster",
        CHAT_HOST="127.0.0.1",
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
    try:
        deadline = time.monotonic() + 60
        text = ""
        while time.monotonic() < deadline and proc.poll() is None:
            text = _scrape(port)
            if re.search(r"^chat_worker_processes 2\.0$", text, re.M):
                break
            time.sleep(0.2)  # polling interval, bounded by the deadline
        assert re.search(r"^chat_worker_processes 2\.0$", text, re.M), text or proc.poll()
        # Summed, not one process's registry: the live gauge has no per-process series.
        assert "pid=" not in text.split("chat_worker_processes", 1)[1].split("\n# ", 1)[0]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()[-2000:]
