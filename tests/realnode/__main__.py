"""`make realnode`: the whole product on a real one-node Kubernetes on this machine, the way a
platform team runs it, left running until Ctrl-C (then everything is torn down and the machine
restored). Needs root and `make setup` (which builds the node's parts)."""

from __future__ import annotations

import signal
import sys
import tempfile
import threading
from pathlib import Path

from tests.realnode import services
from tests.realnode.binaries import locate_node
from tests.realnode.deploy import deploy
from tests.realnode.node import NODE_IP, RealNode


def main() -> int:
    binaries = locate_node()
    if missing := binaries.missing():
        print(f"missing (run `make setup` first): {missing}", file=sys.stderr)
        return 1
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    node = RealNode(binaries, Path(tempfile.mkdtemp(prefix="chatcluster-realnode-")))
    try:
        node.start()
        deployed = deploy(node, node.workdir / "deploy")
        for step, seconds in {**node.timings, **deployed.timings}.items():
            print(f"  {step}: {seconds}s")
        print(
            f"\nChatCluster {services.NAMESPACE}/{services.CLUSTER} is Ready.\n"
            f"  export KUBECONFIG={node.cp.admin_kubeconfig}\n"
            f"  kubectl get chc,pods,ingress -n {services.NAMESPACE}\n"
            f"  chromium --host-resolver-rules='MAP {services.HOST} {NODE_IP}' "
            f"http://{services.HOST}/\n"
            "Ctrl-C tears it all down.",
            flush=True,
        )
        stop.wait()
    finally:
        node.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
