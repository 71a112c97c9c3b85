"""Where scripts/setup.d/45-k8s-node.sh put the node's binaries. The versions are read from
that script (and the control plane's from its wrapper go.mod), so the script and the tests
cannot disagree."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from tests.k8s.k8s_binaries import ROOT, Binaries, locate, pinned

NODE_SCRIPT = ROOT / "scripts" / "setup.d" / "45-k8s-node.sh"
CACHE = Path(os.environ.get("CHATCLUSTER_CACHE", "/var/cache/chatcluster"))


def script_version(variable: str) -> str:
    match = re.search(rf"^{variable}=(\S+)", NODE_SCRIPT.read_text(), re.M)
    if match is None:
        raise LookupError(f"{variable} is not pinned in {NODE_SCRIPT}")
    return match.group(1)


@dataclass(frozen=True)
class NodeBinaries:
    plane: Binaries
    kubelet: Path
    kube_scheduler: Path
    kube_proxy: Path
    crictl: Path
    coredns: Path
    traefik: Path
    metrics_server: Path
    pause_image: Path
    containerd: Path
    ctr: Path

    def missing(self) -> list[str]:
        paths = [p for name, p in self.__dict__.items() if name != "plane"]
        return [str(p) for p in (*self.plane.missing(), *paths) if not p.exists()]


def locate_node() -> NodeBinaries:
    node = CACHE / f"k8s-node-{pinned('kubernetes', 'k8s.io/kubernetes')}"

    def built(name: str, variable: str) -> Path:
        return CACHE / f"{name}-{script_version(variable)}" / name

    return NodeBinaries(
        plane=locate(),
        kubelet=node / "kubelet",
        kube_scheduler=node / "kube-scheduler",
        kube_proxy=node / "kube-proxy",
        crictl=built("crictl", "CRICTL_VERSION"),
        coredns=built("coredns", "COREDNS_VERSION"),
        traefik=built("traefik", "TRAEFIK_VERSION"),
        metrics_server=built("metrics-server", "METRICS_SERVER_VERSION"),
        pause_image=CACHE / f"pause-{script_version('PAUSE_TAG')}" / "pause.tar",
        containerd=Path(shutil.which("containerd") or "/usr/bin/containerd"),
        ctr=Path(shutil.which("ctr") or "/usr/bin/ctr"),
    )
