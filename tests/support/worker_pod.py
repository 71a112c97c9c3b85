"""`chatcluster worker --processes 2` as a pod runs it: a real process tree against the test
servers, its one metrics port scraped until the wanted series appear (bounded), then SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass

from chat.config import Settings
from tests.support.fixtures import free_port


def scrape(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            return str(r.read().decode())
    except OSError:
        return ""


@dataclass
class WorkerRun:
    metrics: str
    """The last scrape: it has every wanted series, unless the worker died or time ran out."""
    returncode: int | None
    stderr: str


def run_worker_pod(
    settings: Settings, wanted: tuple[str, ...], timeout: float = 60, **env: str
) -> WorkerRun:
    """Start a two-process worker with ``env`` on top of the cluster settings, scrape its
    metrics port until every regex in ``wanted`` matches (or ``timeout``), stop it."""
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
    environ.update(
        CHAT_BACKEND="cluster",
        CHAT_HOST="127.0.0.1",
        REDIS_URL=settings.redis_url,
        POSTGRES_DSN=settings.postgres_dsn,
        MONGODB_URI=settings.mongodb_uri,
        MONGODB_DATABASE=settings.mongodb_database,
        CHAT_JWT_SECRET=settings.jwt_secret,
        **env,
    )
    argv = [sys.executable, "-m", "chat", "worker", "--processes", "2", "--threads", "1"]
    proc = subprocess.Popen(
        [*argv, "--metrics-port", str(port)],
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    text = ""
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            text = scrape(port)
            if all(re.search(w, text, re.M) for w in wanted):
                break
            time.sleep(0.2)  # polling interval, bounded by the deadline
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    return WorkerRun(text, proc.returncode, err.decode())
