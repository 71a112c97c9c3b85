"""A real one-node Kubernetes on this machine: the control plane of tests/k8s (in its full
mode, on the node's bridge address), containerd from Debian, the kubelet, kube-scheduler and
kube-proxy, CoreDNS for cluster names, Traefik as the ingress controller and metrics-server
behind the aggregation layer so HorizontalPodAutoscalers see real CPU.

Everything but the bridge lives under one work directory: containerd's root, state and socket,
the kubelet's root, pod logs and plugin directories, CNI configuration and IP leases.
``stop`` removes every pod, stops every part, cleans iptables and mounts and restores what
the kubelet changed (network.py), so the machine is left as it was.

Recipe and why each setting is what it is: ../shared/k8s-real-node.md and docs/deploy.md.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.k8s.controlplane import ControlPlane, free_port, wait_for
from tests.realnode import network
from tests.realnode.binaries import NodeBinaries
from tests.realnode.network import NODE_IP, POD_CIDR, SERVICE_CIDR, sh

NODE_NAME = "chatcluster-node"
INGRESS_CLASS = "traefik"
INGRESS_PORT = 80
CNI_NETWORK = "chatcluster-node"
START_TIMEOUT = 120.0


def _write(path: Path, data: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data)
    return path


@dataclass
class RealNode:
    binaries: NodeBinaries
    workdir: Path
    net: network.NodeNetwork = field(default_factory=network.NodeNetwork)
    plane: ControlPlane | None = None
    timings: dict[str, float] = field(default_factory=dict)
    _kubelet: subprocess.Popen[bytes] | None = None

    @property
    def cp(self) -> ControlPlane:
        assert self.plane is not None, "the node is not started"
        return self.plane

    @property
    def containerd_socket(self) -> Path:
        return self.workdir / "containerd" / "containerd.sock"

    # -- bring-up ----------------------------------------------------------------------
    def start(self) -> None:
        began = time.monotonic()
        self.net.up()
        plane_dir = self.workdir / "plane"
        plane_dir.mkdir()
        self.plane = ControlPlane(
            self.binaries.plane, plane_dir, address=NODE_IP, service_cidr=SERVICE_CIDR, full=True
        )
        self.plane.start()
        self._mark("control plane", began)
        self._start_containerd()
        self.import_images(self.binaries.pause_image)
        self._start_kubelet()
        self._start_scheduler_and_proxy()
        self._start_coredns()
        wait_for("node Ready", self._node_ready, START_TIMEOUT, interval=0.5)
        self._mark("node Ready", began)
        self._start_traefik()
        self._start_metrics_server()
        self._mark("ingress and metrics-server", began)

    def _mark(self, what: str, since: float) -> None:
        self.timings[what] = round(time.monotonic() - since, 1)

    def _start_containerd(self) -> None:
        root = self.workdir / "containerd"
        cni_conf = self.workdir / "cni" / "net.d"
        config = f"""
version = 2
root = "{root / "root"}"
state = "{root / "state"}"
[grpc]
  address = "{self.containerd_socket}"
[ttrpc]
  address = "{root / "containerd.sock.ttrpc"}"
[debug]
  level = "warn"
[plugins."io.containerd.internal.v1.opt"]
  path = "{root / "opt"}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10"
  disable_apparmor = true
  # Lowering oom_score_adj needs CAP_SYS_RESOURCE, which this machine does not grant: without
  # this every sandbox fails with "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{root / "runc"}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni_conf}"
"""
        conf = _write(root / "config.toml", config)
        cni = {
            "cniVersion": "0.4.0",
            "name": CNI_NETWORK,
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": network.BRIDGE,
                    "isGateway": True,
                    "ipMasq": False,  # nothing may leave the machine, so nothing to masquerade
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": POD_CIDR, "rangeStart": "10.244.77.10"}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": str(self.workdir / "cni" / "ipam"),
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        }
        _write(cni_conf / "10-chatcluster.conflist", json.dumps(cni))
        self.cp.spawn("containerd", [str(self.binaries.containerd), "--config", str(conf)])
        wait_for("containerd", lambda: self.ctr("version", check=False).returncode == 0, 30)

    def ctr(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [
                str(self.binaries.ctr),
                "--address",
                str(self.containerd_socket),
                "-n",
                "k8s.io",
                *args,
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"ctr {' '.join(args)} failed: {result.stderr}")
        return result

    def import_images(self, archive: Path) -> None:
        """Images reach the node as `podman save` archives: no registry is reachable."""
        self.ctr("images", "import", str(archive))

    def _start_kubelet(self) -> None:
        kubelet = self.workdir / "kubelet"
        keys = self.cp.certs
        resolv = _write(self.workdir / "resolv.conf", "")  # pods get CoreDNS only
        config: dict[str, Any] = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": NODE_IP,
            "port": free_port(),
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": free_port(),
            "containerRuntimeEndpoint": f"unix://{self.containerd_socket}",
            "cgroupDriver": "cgroupfs",
            "failSwapOn": False,
            "failCgroupV1": False,  # this machine mounts cgroup v1 (hybrid)
            "maxOpenFiles": 20000,  # no raising RLIMIT_NOFILE past the hard limit here
            "oomScoreAdj": 0,  # and no lowering oom_score_adj (no CAP_SYS_RESOURCE)
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(keys.ca_cert)},
            },
            "authorization": {"mode": "Webhook"},
            "clusterDNS": [NODE_IP],
            "clusterDomain": "cluster.local",
            "resolvConf": str(resolv),
            "staticPodPath": str(kubelet / "manifests"),
            "podLogsDir": str(self.workdir / "pod-logs"),
            "volumePluginDir": str(kubelet / "volume-plugins"),
            "serializeImagePulls": False,
            # Small disks and busy machines must not evict the test's pods.
            "evictionHard": {"memory.available": "100Mi", "nodefs.available": "2%"},
            "imageGCHighThresholdPercent": 100,
            "maxPods": 60,
        }
        (kubelet / "manifests").mkdir(parents=True)
        conf = _write(kubelet / "config.yaml", yaml.safe_dump(config))
        self._kubelet = self.cp.spawn(
            "kubelet",
            [
                str(self.binaries.kubelet),
                f"--config={conf}",
                f"--kubeconfig={self.cp.admin_kubeconfig}",
                f"--root-dir={kubelet / 'root'}",
                f"--cert-dir={kubelet / 'pki'}",
                f"--node-ip={NODE_IP}",
                f"--hostname-override={NODE_NAME}",
                "--v=1",
            ],
        )

    def _start_scheduler_and_proxy(self) -> None:
        kubeconfig = str(self.cp.admin_kubeconfig)
        self.cp.spawn(
            "kube-scheduler",
            [
                str(self.binaries.kube_scheduler),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--leader-elect=false",
                "--secure-port=0",
                "--v=0",
            ],
        )
        proxy: dict[str, Any] = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": kubeconfig},
            "mode": "iptables",
            "clusterCIDR": POD_CIDR,
            "hostnameOverride": NODE_NAME,
            "bindAddress": NODE_IP,
            "nodePortAddresses": [f"{NODE_IP}/32"],
            "healthzBindAddress": f"127.0.0.1:{free_port()}",
            "metricsBindAddress": f"127.0.0.1:{free_port()}",
            # 0 leaves the host's conntrack sysctls alone.
            "conntrack": {"maxPerCore": 0, "min": 0},
            "iptables": {"syncPeriod": "10s", "minSyncPeriod": "0s"},
        }
        conf = _write(self.workdir / "kube-proxy.yaml", yaml.safe_dump(proxy))
        self.cp.spawn("kube-proxy", [str(self.binaries.kube_proxy), f"--config={conf}", "--v=0"])

    def _start_coredns(self) -> None:
        """Cluster names only, on the node address: no upstream, so a pod's lookup of any
        other name fails here instead of leaving the machine."""
        corefile = _write(
            self.workdir / "Corefile",
            f""".:53 {{
    bind {NODE_IP}
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {{
        kubeconfig {self.cp.admin_kubeconfig}
        pods insecure
    }}
    cache 5
}}
""",
        )
        self.cp.spawn("coredns", [str(self.binaries.coredns), "-conf", str(corefile)])

    def _node_ready(self) -> bool:
        self.cp.assert_alive()
        node = self.cp.try_get("node", NODE_NAME)
        return bool(node) and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in node["status"].get("conditions", ())
        )

    def _start_traefik(self) -> None:
        self.apply(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "IngressClass",
                "metadata": {"name": INGRESS_CLASS},
                "spec": {"controller": "traefik.io/ingress-controller"},
            }
        )
        self.traefik_ping = free_port()
        self.cp.spawn(
            "traefik",
            [
                str(self.binaries.traefik),
                f"--entryPoints.web.address={NODE_IP}:{INGRESS_PORT}",
                # WebSockets live for hours; Traefik v3's 60 s default read deadline would cut
                # every one of them.
                "--entryPoints.web.transport.respondingTimeouts.readTimeout=0",
                f"--entryPoints.ping.address=127.0.0.1:{self.traefik_ping}",
                "--ping.entryPoint=ping",
                "--providers.kubernetesingress=true",
                f"--providers.kubernetesingress.ingressendpoint.ip={NODE_IP}",
                "--global.checkNewVersion=false",
                "--global.sendAnonymousUsage=false",
                "--log.level=INFO",
                "--accesslog=true",
            ],
            env={"KUBECONFIG": str(self.cp.admin_kubeconfig), "PATH": "/usr/bin:/bin"},
        )

    def _start_metrics_server(self) -> None:
        port = free_port()
        kubeconfig = str(self.cp.admin_kubeconfig)
        (self.workdir / "metrics-server").mkdir()
        self.cp.spawn(
            "metrics-server",
            [
                str(self.binaries.metrics_server),
                f"--bind-address={NODE_IP}",
                f"--secure-port={port}",
                f"--cert-dir={self.workdir / 'metrics-server'}",
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--kubelet-insecure-tls",  # the kubelet's serving cert is self-signed
                "--kubelet-preferred-address-types=InternalIP",
                "--kubelet-use-node-status-port",
                "--metric-resolution=15s",  # must exceed the 10 s kubelet request timeout
            ],
        )
        self.apply(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "metrics-server", "namespace": "kube-system"},
                "spec": {"ports": [{"name": "https", "port": 443, "targetPort": port}]},
            },
            {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {"name": "metrics-server", "namespace": "kube-system"},
                "subsets": [
                    {"addresses": [{"ip": NODE_IP}], "ports": [{"name": "https", "port": port}]}
                ],
            },
            {
                "apiVersion": "apiregistration.k8s.io/v1",
                "kind": "APIService",
                "metadata": {"name": "v1beta1.metrics.k8s.io"},
                "spec": {
                    "group": "metrics.k8s.io",
                    "version": "v1beta1",
                    "service": {"namespace": "kube-system", "name": "metrics-server", "port": 443},
                    "insecureSkipTLSVerify": True,
                    "groupPriorityMinimum": 100,
                    "versionPriority": 100,
                },
            },
        )

    # -- use ---------------------------------------------------------------------------
    def apply(self, *objects: dict[str, Any], namespace: str | None = None) -> None:
        args = ["apply", "-f", "-"] + (["-n", namespace] if namespace else [])
        self.cp.kubectl(*args, stdin=yaml.safe_dump_all(objects))

    def logs(self, name: str, lines: int = 60) -> str:
        path = self.cp.workdir / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    # -- teardown ----------------------------------------------------------------------
    def stop(self) -> None:
        """Pods first (the kubelet stopped so it cannot restart them), then every process,
        then what they left in the kernel and on disk."""
        try:
            if self.plane is not None:
                if self._kubelet is not None and self._kubelet.poll() is None:
                    self._kubelet.terminate()
                    self._kubelet.wait(timeout=30)
                if self.containerd_socket.exists():
                    crictl = [
                        str(self.binaries.crictl),
                        f"--runtime-endpoint=unix://{self.containerd_socket}",
                        "--timeout=60s",
                    ]
                    subprocess.run([*crictl, "rmp", "-a", "-f"], capture_output=True, timeout=180)
                self.plane.stop()
                if self.binaries.kube_proxy.exists():
                    sh(str(self.binaries.kube_proxy), "--cleanup", check=False)
        finally:
            self._unmount_all()
            self._remove_cgroups()
            self.net.down()

    def _unmount_all(self) -> None:
        mounts = [
            line.split()[1]
            for line in Path("/proc/self/mounts").read_text().splitlines()
            if line.split()[1].startswith(str(self.workdir))
        ]
        for target in sorted(mounts, key=len, reverse=True):
            sh("umount", "-l", target, check=False)

    @staticmethod
    def _remove_cgroups() -> None:
        """The kubelet's QoS cgroups (kubepods, kubepods/burstable, ...) in each hierarchy."""
        for hierarchy in Path("/sys/fs/cgroup").iterdir():
            top = hierarchy / "kubepods"
            if top.is_dir():
                nested = sorted(top.rglob("*"), key=lambda p: len(p.parts), reverse=True)
                for directory in [*nested, top]:
                    if directory.is_dir():
                        sh("rmdir", str(directory), check=False)
