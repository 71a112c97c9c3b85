"""Where scripts/setup.d/40-k8s.sh put the control-plane binaries: the versions are read from
the same wrapper go.mod files, so the script and the tests cannot disagree."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WRAPPERS = ROOT / "scripts" / "k8s"


def pinned(wrapper: str, module: str) -> str:
    text = (WRAPPERS / wrapper / "go.mod").read_text()
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", text, re.M)
    if match is None:
        raise LookupError(f"{module} is not pinned in scripts/k8s/{wrapper}/go.mod")
    return match.group(1)


@dataclass(frozen=True)
class Binaries:
    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kubectl: Path
    helm: Path

    def missing(self) -> list[Path]:
        return [p for p in self.__dict__.values() if not os.access(p, os.X_OK)]


def locate() -> Binaries:
    cache = Path(os.environ.get("CHATCLUSTER_CACHE", "/var/cache/chatcluster"))
    k8s = cache / f"k8s-{pinned('kubernetes', 'k8s.io/kubernetes')}" / "bin"
    etcd = cache / f"etcd-{pinned('etcd', 'go.etcd.io/etcd/server/v3')}" / "bin"
    helm = cache / f"helm-{pinned('helm', 'helm.sh/helm/v3')}" / "bin"
    return Binaries(
        etcd=etcd / "etcd",
        kube_apiserver=k8s / "kube-apiserver",
        kube_controller_manager=k8s / "kube-controller-manager",
        kubectl=k8s / "kubectl",
        helm=helm / "helm",
    )
