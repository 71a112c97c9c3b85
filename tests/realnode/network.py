"""The node's network: a bridge the harness owns, guards so that no pod traffic can leave the
machine, and a teardown that leaves the machine as it was.

Pods live in network namespaces containerd makes, attached by the CNI bridge plugin to
``BRIDGE``. Before any pod starts, iptables rules in chains of our own drop anything forwarded
between the bridge and any other interface (so a pod reaches only other pods and the node's own
address) and anything arriving from another interface for the pod range. The service range is
routed into the bridge, so Service traffic cannot leave by the default route even before
kube-proxy's rules exist. The tests assert the drop counters stay at 0: nothing even tried.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

BRIDGE = "chatk8s0"
POD_CIDR = "10.244.77.0/24"
NODE_IP = "10.244.77.1"
SERVICE_CIDR = "10.96.77.0/24"
FORWARD_GUARD = "CHATCLUSTER-FWD"
INPUT_GUARD = "CHATCLUSTER-IN"

# The kubelet sets these (kernel.panic=10, kernel.panic_on_oops=1, vm.overcommit_memory=1);
# forwarding must be on for pod -> Service -> pod traffic and is restored only if we turned it
# on (podman turns it on for its own networks and relies on it staying on).
RESTORED_SYSCTLS = ("kernel.panic", "kernel.panic_on_oops", "vm.overcommit_memory")
FORWARDING = "net.ipv4.ip_forward"

# Chains the kubelet and kube-proxy leave behind even after `kube-proxy --cleanup`.
LEFTOVER_CHAINS = {
    "filter": ("KUBE-FIREWALL", "KUBE-KUBELET-CANARY", "KUBE-PROXY-CANARY", "KUBE-IPTABLES-HINT"),
    "nat": ("KUBE-KUBELET-CANARY", "KUBE-PROXY-CANARY", "KUBE-MARK-MASQ", "KUBE-POSTROUTING"),
    "mangle": ("KUBE-KUBELET-CANARY", "KUBE-PROXY-CANARY", "KUBE-IPTABLES-HINT"),
}
# Host paths the kubelet and CNI hard-code whatever their configured roots.
HOST_LEFTOVERS = (
    Path("/var/lib/kubelet/device-plugins"),
    Path("/var/log/containers"),
    Path("/var/log/pods"),
    Path("/var/lib/cni/results"),
)


def require_bridge() -> None:
    """Refuse to send anything to the node or pod addresses unless the bridge that keeps them
    on this machine exists: without it they would be routed off the machine."""
    if not Path(f"/sys/class/net/{BRIDGE}").exists():
        raise RuntimeError(f"{BRIDGE} is down: node and pod addresses are not on this machine")


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(args), capture_output=True, text=True, check=False, timeout=60)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr}")
    return result


def sysctl(name: str) -> str:
    return Path("/proc/sys", *name.split(".")).read_text().strip()


def set_sysctl(name: str, value: str) -> None:
    Path("/proc/sys", *name.split(".")).write_text(value)


@dataclass
class NodeNetwork:
    saved: dict[str, str] = field(default_factory=dict)
    _up: bool = False

    def up(self) -> None:
        if Path(f"/sys/class/net/{BRIDGE}").exists():
            # A run that was killed before its teardown (the bridge and chains are ours alone).
            self._up = True
            self.saved = {}
            self.down()
        self.saved = {name: sysctl(name) for name in (*RESTORED_SYSCTLS, FORWARDING)}
        self._up = True
        self._guards()
        sh("ip", "link", "add", BRIDGE, "type", "bridge")
        sh("ip", "addr", "add", f"{NODE_IP}/24", "dev", BRIDGE)
        sh("ip", "link", "set", BRIDGE, "up")
        sh("ip", "route", "add", SERVICE_CIDR, "dev", BRIDGE, "src", NODE_IP)
        if self.saved[FORWARDING] != "1":
            set_sysctl(FORWARDING, "1")

    def _guards(self) -> None:
        sh("iptables", "-w", "-N", FORWARD_GUARD)
        sh("iptables", "-w", "-A", FORWARD_GUARD, "-i", BRIDGE, "!", "-o", BRIDGE, "-j", "DROP")
        sh("iptables", "-w", "-A", FORWARD_GUARD, "!", "-i", BRIDGE, "-o", BRIDGE, "-j", "DROP")
        sh("iptables", "-w", "-I", "FORWARD", "1", "-j", FORWARD_GUARD)
        sh("iptables", "-w", "-N", INPUT_GUARD)
        # Pods, and the host's own processes (they reach the node address over loopback), may
        # talk to the node address; from any other interface the pod and service ranges drop.
        for interface in ("lo", BRIDGE):
            sh("iptables", "-w", "-A", INPUT_GUARD, "-i", interface, "-j", "RETURN")
        for cidr in (POD_CIDR, SERVICE_CIDR):
            sh("iptables", "-w", "-A", INPUT_GUARD, "-d", cidr, "-j", "DROP")
        sh("iptables", "-w", "-I", "INPUT", "1", "-j", INPUT_GUARD)

    def dropped_packets(self) -> int:
        """Packets the guards dropped: anything but 0 means a pod tried to leave the machine or
        something outside tried to reach a pod."""
        total = 0
        for chain in (FORWARD_GUARD, INPUT_GUARD):
            listing = sh("iptables", "-w", "-L", chain, "-v", "-x", "-n").stdout
            for line in listing.splitlines()[2:]:
                match = re.match(r"\s*(\d+)\s+\d+\s+DROP", line)
                if match:
                    total += int(match.group(1))
        return total

    def down(self) -> None:
        if not self._up:
            return
        for hook, chain in (("FORWARD", FORWARD_GUARD), ("INPUT", INPUT_GUARD)):
            while sh("iptables", "-w", "-D", hook, "-j", chain, check=False).returncode == 0:
                pass
            sh("iptables", "-w", "-F", chain, check=False)
            sh("iptables", "-w", "-X", chain, check=False)
        for table, chains in LEFTOVER_CHAINS.items():
            for chain in chains:
                remove_chain(table, chain)
        sh("ip", "link", "del", BRIDGE, check=False)  # takes its address and routes along
        for name, value in self.saved.items():
            if name != FORWARDING or value != "1":
                set_sysctl(name, value)
        for path in HOST_LEFTOVERS:
            sh("rm", "-rf", str(path), check=False)
        self._up = False


def remove_chain(table: str, chain: str) -> None:
    """Delete every jump to ``chain`` in ``table``, then the chain itself."""
    rules = sh("iptables", "-w", "-t", table, "-S", check=False).stdout.splitlines()
    for rule in rules:
        if rule.startswith("-A ") and f"-j {chain}" in rule:
            sh("iptables", "-w", "-t", table, "-D", *shlex.split(rule)[1:], check=False)
    sh("iptables", "-w", "-t", table, "-F", chain, check=False)
    sh("iptables", "-w", "-t", table, "-X", chain, check=False)
