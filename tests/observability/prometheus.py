"""A real Prometheus (Debian's package) on a free loopback port, scraping given targets every
second and evaluating the given rule groups every second; queried over its HTTP API."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Target:
    address: str
    labels: dict[str, str]


@dataclass
class Prometheus:
    url: str

    def query(self, expr: str) -> list[dict[str, Any]]:
        reply = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10).json()
        assert reply["status"] == "success", (expr, reply)
        return list(reply["data"]["result"])

    def query_range(
        self, expr: str, start: float, end: float, step_s: float
    ) -> list[dict[str, Any]]:
        """A range query's `result`: per series its `metric` labels and `values` [t, "v"]."""
        reply = httpx.get(
            f"{self.url}/api/v1/query_range",
            params={"query": expr, "start": start, "end": end, "step": step_s},
            timeout=10,
        ).json()
        assert reply["status"] == "success", (expr, reply)
        return list(reply["data"]["result"])

    def alerts(self) -> list[dict[str, Any]]:
        return list(httpx.get(f"{self.url}/api/v1/alerts", timeout=10).json()["data"]["alerts"])

    def firing(self, name: str) -> bool:
        return any(
            a["labels"]["alertname"] == name and a["state"] == "firing" for a in self.alerts()
        )


def poll(check: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:g}s: {what}")
        time.sleep(0.25)


@contextmanager
def running_prometheus(
    workdir: Path, targets: list[Target], groups: list[dict[str, Any]], honor_labels: bool = False
) -> Iterator[Prometheus]:
    """``honor_labels``: as a ServiceMonitor endpoint's `honorLabels` (Prometheus' default
    False renames a scraped label that clashes with a target label to `exported_<label>`)."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise RuntimeError("prometheus (Debian package) is not installed")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "rule_files": ["rules.yaml"],
        "scrape_configs": [
            {
                "job_name": "chat",
                "honor_labels": honor_labels,
                "static_configs": [{"targets": [t.address], "labels": t.labels} for t in targets],
            }
        ],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = _free_port()
    log = (workdir / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=workdir,
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if proc.poll() is not None:
            raise RuntimeError((workdir / "prometheus.log").read_text()[-3000:])
        try:
            return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        poll(ready, 30, "prometheus ready")
        yield Prometheus(url)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
