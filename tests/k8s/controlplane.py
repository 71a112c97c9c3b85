"""A real, throwaway Kubernetes control plane on loopback: etcd, kube-apiserver and
kube-controller-manager (Deployments -> ReplicaSets -> Pods, Jobs, garbage collection).

There is no kubelet and no scheduler; :mod:`fake_kubelet` plays the kubelet's one part the
tests need (reporting pods Ready / Succeeded), so every controller above it runs for real.
With ``full=True`` it is the control plane of a real node (tests/realnode): it listens on the
node's address, runs every controller, mints ServiceAccount tokens and serves the aggregation
layer that metrics-server plugs into.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.k8s import pki
from tests.k8s.k8s_binaries import Binaries
from tools.harness.net import free_port

START_TIMEOUT = 90.0


def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 0.25) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after timeout."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:
            last_error = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}; last error: {last_error}")


def kubeconfig(server: str, ca: Path, user: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "test",
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca.read_bytes()).decode(),
                },
            }
        ],
        "users": [{"name": "user", "user": user}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "user"}}],
        "current-context": "test",
    }


# The controllers the fake-kubelet tests assert on; a full control plane runs all of them.
FAKE_KUBELET_CONTROLLERS = (
    "deployment-controller,replicaset-controller,"
    "garbage-collector-controller,job-controller,ttl-after-finished-controller"
)


@dataclass
class ControlPlane:
    binaries: Binaries
    workdir: Path
    address: str = "127.0.0.1"
    """Where kube-apiserver listens and what it advertises (a kubelet refuses loopback)."""
    service_cidr: str = "10.0.0.0/24"
    full: bool = False
    server: str = ""
    admin_kubeconfig: Path = field(default_factory=Path)
    _procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    _pki: pki.Pki | None = None

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        certs = self.workdir / "pki"
        certs.mkdir()
        first_service_ip = str(ipaddress.ip_network(self.service_cidr)[1])
        self._pki = keys = pki.generate(
            certs,
            ips=("127.0.0.1", self.address, first_service_ip),
            names=("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"),
        )
        etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        self.spawn(
            "etcd",
            [
                str(self.binaries.etcd),
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-cluster=default=http://127.0.0.1:{peer_port}",
                "--unsafe-no-fsync",  # throwaway data: durability buys nothing here
                "--log-level=warn",
            ],
        )
        self.server = f"https://{self.address}:{api_port}"
        self.spawn(
            "kube-apiserver",
            [
                str(self.binaries.kube_apiserver),
                f"--etcd-servers={etcd_url}",
                f"--bind-address={self.address}",
                f"--advertise-address={self.address}",
                f"--secure-port={api_port}",
                f"--cert-dir={certs}",
                f"--tls-cert-file={keys.serving_cert}",
                f"--tls-private-key-file={keys.serving_key}",
                f"--client-ca-file={keys.ca_cert}",
                f"--service-account-issuer={self.server}",
                f"--service-account-key-file={keys.sa_pub}",
                f"--service-account-signing-key-file={keys.sa_key}",
                "--authorization-mode=RBAC",
                f"--service-cluster-ip-range={self.service_cidr}",
                "--allow-privileged=true",
                "--enable-priority-and-fairness=false",
                "--profiling=false",
                "--v=0",
                *(self._node_apiserver_args(keys) if self.full else self._fake_apiserver_args()),
            ],
        )
        admin = kubeconfig(
            self.server,
            keys.ca_cert,
            {
                "client-certificate-data": base64.b64encode(keys.admin_cert.read_bytes()).decode(),
                "client-key-data": base64.b64encode(keys.admin_key.read_bytes()).decode(),
            },
        )
        self.admin_kubeconfig = self.workdir / "admin.kubeconfig"
        self.admin_kubeconfig.write_text(yaml.safe_dump(admin))
        self.admin_kubeconfig.chmod(0o600)
        wait_for(
            "kube-apiserver /readyz",
            lambda: self.kubectl("get", "--raw=/readyz", check=False).returncode == 0,
            START_TIMEOUT,
            interval=0.5,
        )
        self.spawn(
            "kube-controller-manager",
            [
                str(self.binaries.kube_controller_manager),
                f"--kubeconfig={self.admin_kubeconfig}",
                f"--controllers={'*' if self.full else FAKE_KUBELET_CONTROLLERS}",
                "--leader-elect=false",
                "--secure-port=0",
                "--concurrent-deployment-syncs=2",
                "--v=0",
                *(self._node_controller_args(keys) if self.full else ()),
            ],
        )

    @staticmethod
    def _fake_apiserver_args() -> tuple[str, ...]:
        # No kubelet/serviceaccount controller mints pod tokens here; pods don't need them.
        return ("--disable-admission-plugins=ServiceAccount",)

    def _node_apiserver_args(self, keys: pki.Pki) -> tuple[str, ...]:
        """Pods get ServiceAccount tokens; the apiserver reaches the kubelet (logs, exec) with
        the admin cert; the aggregation layer proxies metrics.k8s.io to metrics-server."""
        return (
            f"--kubelet-client-certificate={keys.admin_cert}",
            f"--kubelet-client-key={keys.admin_key}",
            # The node's name is no DNS name here: reach the kubelet (logs, exec) by address.
            "--kubelet-preferred-address-types=InternalIP",
            f"--requestheader-client-ca-file={keys.ca_cert}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-username-headers=X-Remote-User",
            f"--proxy-client-cert-file={keys.front_proxy_cert}",
            f"--proxy-client-key-file={keys.front_proxy_key}",
            # metrics-server runs on the node, not behind a ClusterIP the apiserver could route.
            "--enable-aggregator-routing=true",
        )

    def _node_controller_args(self, keys: pki.Pki) -> tuple[str, ...]:
        plugins = self.workdir / "flex-volume-plugins"  # never the host's default directory
        plugins.mkdir(exist_ok=True)
        return (
            f"--service-account-private-key-file={keys.sa_key}",
            f"--root-ca-file={keys.ca_cert}",
            f"--flex-volume-plugin-dir={plugins}",
        )

    def stop(self) -> None:
        for _, proc in reversed(self._procs):
            proc.terminate()
        for _, proc in reversed(self._procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._procs.clear()

    def spawn(
        self, name: str, argv: Sequence[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start a part whose log is ``<workdir>/<name>.log``; :meth:`stop` ends it (in reverse
        start order)."""
        with (self.workdir / f"{name}.log").open("wb") as log:  # the child keeps its own fd
            proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir, env=env
            )
        self._procs.append((name, proc))
        return proc

    def assert_alive(self) -> None:
        for name, proc in self._procs:
            if proc.poll() is not None:
                tail = (self.workdir / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")

    @property
    def certs(self) -> pki.Pki:
        assert self._pki is not None, "the control plane is not started"
        return self._pki

    # -- clients -----------------------------------------------------------------------
    def env(self, kubeconfig_path: Path | None = None) -> dict[str, str]:
        return {
            **os.environ,
            "KUBECONFIG": str(kubeconfig_path or self.admin_kubeconfig),
            "HOME": str(self.workdir),
        }

    def kubectl(
        self,
        *args: str,
        stdin: str | None = None,
        check: bool = True,
        kubeconfig_path: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.binaries.kubectl), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env(kubeconfig_path),
            timeout=60,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
        return result

    def get_json(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def try_get(self, *args: str) -> Any | None:
        result = self.kubectl("get", *args, "-o", "json", check=False)
        if result.returncode != 0:
            if "NotFound" in result.stderr or "not found" in result.stderr:
                return None
            raise AssertionError(result.stderr)
        return json.loads(result.stdout)

    def helm(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {
            **self.env(),
            "HELM_CACHE_HOME": str(self.workdir / "helm-cache"),
            "HELM_CONFIG_HOME": str(self.workdir / "helm-config"),
            "HELM_DATA_HOME": str(self.workdir / "helm-data"),
        }
        result = subprocess.run(
            [str(self.binaries.helm), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stderr}")
        return result

    def token_kubeconfig(self, namespace: str, service_account: str) -> Path:
        """A kubeconfig that authenticates AS the service account (TokenRequest), so the
        operator runs with exactly the chart's RBAC."""
        token = self.kubectl(
            "create", "token", service_account, "-n", namespace, "--duration=2h"
        ).stdout.strip()
        assert self._pki is not None
        path = self.workdir / f"{service_account}.kubeconfig"
        path.write_text(
            yaml.safe_dump(kubeconfig(self.server, self._pki.ca_cert, {"token": token}))
        )
        path.chmod(0o600)
        return path
