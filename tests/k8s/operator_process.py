"""Runs the operator as a local process (``python -m chat_operator``) under the chart's
ServiceAccount token, exactly as the chart's Deployment would run it in-cluster."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.k8s.controlplane import free_port, wait_for

LEASE_NAMESPACE = "chat-system"  # the chart's release namespace


class OperatorProcess:
    def __init__(
        self,
        kubeconfig: Path,
        logdir: Path,
        resync_seconds: float = 1.0,
        identity: str = "operator-a",
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self._kubeconfig = kubeconfig
        self._logdir = logdir
        self.resync_seconds = resync_seconds
        self.identity = identity
        self.extra_args = extra_args
        self._proc: subprocess.Popen[bytes] | None = None
        self._starts = 0
        self.health_port = 0
        self.metrics_port = 0

    def start(self) -> None:
        self._starts += 1
        self.health_port, self.metrics_port = free_port(), free_port()
        with (self._logdir / f"{self.identity}-{self._starts}.log").open("wb") as log:
            self._proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "chat_operator",
                    f"--resync-seconds={self.resync_seconds}",
                    f"--liveness=http://127.0.0.1:{self.health_port}/healthz",
                    f"--metrics-port={self.metrics_port}",
                    # The chart's Lease, as the in-cluster Deployment uses it (POD_NAMESPACE).
                    f"--leader-election-namespace={LEASE_NAMESPACE}",
                    "--lease-seconds=3",
                    f"--identity={self.identity}",
                    *self.extra_args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={
                    "KUBECONFIG": str(self._kubeconfig),
                    "PATH": "/usr/bin:/bin",
                    "HOME": str(self._logdir),
                    # This checkout's code, not whatever the venv's editable install points at.
                    "PYTHONPATH": os.pathsep.join(sys.path),
                },
            )
        wait_for("operator /healthz", self.healthy, 60)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no clean Lease release, as when a node dies."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None

    def healthy(self) -> bool:
        self.assert_alive()
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.health_port}/healthz", timeout=2
            ) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def assert_alive(self) -> None:
        if self._proc is not None and self._proc.poll() is not None:
            raise RuntimeError(f"operator exited with {self._proc.returncode}:\n{self.log()}")

    def log(self) -> str:
        return self.full_log()[-5000:]

    def full_log(self) -> str:
        path = self._logdir / f"{self.identity}-{self._starts}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def scrape(self) -> str:
        """One scrape of the operator's /metrics: several figures taken from the same scrape
        are consistent with each other (separate scrapes may straddle a request)."""
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2
        ) as resp:
            return str(resp.read().decode())

    def metric(self, name: str, labels: str = "", *, text: str | None = None) -> float:
        """Sum of a metric's samples whose label set contains ``labels`` (in ``text``, one
        earlier scrape, or a fresh one)."""
        text = self.scrape() if text is None else text
        total = 0.0
        for match in re.finditer(rf"^{re.escape(name)}(\{{[^}}]*\}})? (\S+)$", text, re.M):
            if labels in (match.group(1) or ""):
                total += float(match.group(2))
        return total

    def reconciles(self) -> float:
        """Completed passes (ok or degraded: both ended with an honest status)."""
        return self.metric("chatcluster_operator_reconciles_total", 'result="ok"') + self.metric(
            "chatcluster_operator_reconciles_total", 'result="degraded"'
        )
