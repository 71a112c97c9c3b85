"""Deploying chatcluster onto a real node as a user would: the images, the operator chart
(the operator runs as its own pod under the chart's RBAC), the backing services as pods, the
Secrets, and one ChatCluster applied with kubectl. Used by the tests' session fixture and by
`make realnode` (tests/realnode/__main__.py)."""

from __future__ import annotations

import secrets
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.k8s.controlplane import wait_for
from tests.k8s.support import CHART, OPERATOR_NAMESPACE, RELEASE, condition
from tests.realnode import images, network, services
from tests.realnode.node import INGRESS_PORT, NODE_IP, RealNode

READY_TIMEOUT = 300.0


@dataclass
class Deployed:
    """The ChatCluster a user applied, and how long each step of getting there took."""

    node: RealNode
    jwt_secret: str
    timings: dict[str, float] = field(default_factory=dict)

    def kubectl(self, *args: str, check: bool = True) -> str:
        return self.node.cp.kubectl(*args, check=check).stdout

    def get(self, *args: str) -> Any:
        return self.node.cp.get_json(*args, "-n", services.NAMESPACE)

    def chat_cluster(self) -> dict[str, Any]:
        return dict(self.get("chatcluster", services.CLUSTER))

    def ready(self) -> bool:
        cond = condition(self.chat_cluster(), "Ready")
        return bool(cond and cond["status"] == "True")


def deploy(node: RealNode, workdir: Path) -> Deployed:
    """What a platform team does: build and load the images, `helm install` the operator,
    run the backing services, create the Secrets, `kubectl apply` the ChatCluster, and wait
    (bounded) until it reports Ready. Each step's duration lands in ``timings``."""
    cp = node.cp
    result = Deployed(node, jwt_secret=secrets.token_urlsafe(48))
    start = time.monotonic()

    built = images.build(workdir / "images")
    node.import_images(built.archive)
    result.timings["images built"] = built.seconds
    result.timings["images imported"] = round(time.monotonic() - start - built.seconds, 1)

    mark = time.monotonic()
    cp.helm(
        "install", RELEASE, str(CHART), "--namespace", OPERATOR_NAMESPACE, "--create-namespace",
        "--set", f"image.repository={images.REPOSITORY}",
        "--set", f"image.tag={images.VERSIONS[0]}",
        "--set", "image.pullPolicy=Never",
        "--set", "resyncSeconds=5",
        "--wait", "--timeout=180s",
    )  # fmt: skip
    result.timings["operator chart installed and its pod Ready"] = round(time.monotonic() - mark, 1)

    mark = time.monotonic()
    node.apply(*services.backing_services())
    node.apply(*services.secrets_for(result.jwt_secret))
    for name in ("redis", "postgres", "mongo"):
        cp.kubectl(
            "rollout", "status", f"deployment/{name}", "-n", services.NAMESPACE, "--timeout=180s"
        )
    result.timings["Redis, PostgreSQL, FerretDB pods Ready"] = round(time.monotonic() - mark, 1)

    mark = time.monotonic()
    node.apply(services.chat_cluster())
    try:
        wait_for("ChatCluster Ready", result.ready, READY_TIMEOUT, interval=1.0)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{diagnose(result)}") from exc
    result.timings["ChatCluster applied to Ready"] = round(time.monotonic() - mark, 1)

    # Ready is the operator's view; the ingress controller picks the Ingress and its endpoints
    # up on its own schedule. Users reach the product only once it routes.
    mark = time.monotonic()
    wait_for("the Ingress to route /healthz", ingress_routes, READY_TIMEOUT, interval=0.5)
    result.timings["Ingress routes to the API"] = round(time.monotonic() - mark, 1)
    return result


def ingress_routes() -> bool:
    """Both of the Ingress's paths reach their Service: `/healthz` the API (200), `/ws` a
    gateway, which refuses a plain GET with 400 (Traefik answers 404 for a route it does not
    have yet, or whose Service has no endpoints in its view)."""
    return _status("/healthz") == 200 and _status("/ws") == 400


def _status(path: str) -> int | None:
    network.require_bridge()
    request = urllib.request.Request(
        f"http://{NODE_IP}:{INGRESS_PORT}{path}", headers={"Host": services.HOST}
    )
    try:
        with urllib.request.urlopen(request, timeout=3) as resp:  # our own node's address
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return None


def diagnose(deployed: Deployed) -> str:
    """What a person would look at when the ChatCluster does not become Ready."""
    cp = deployed.node.cp
    parts = [
        cp.kubectl(
            "get", "chc,deploy,job,pods,svc,ingress,hpa", "-A", "-o", "wide", check=False
        ).stdout,
        cp.kubectl("get", "events", "-A", "--sort-by=.lastTimestamp", check=False).stdout[-4000:],
        cp.kubectl(
            "logs", "-n", OPERATOR_NAMESPACE, f"deploy/{RELEASE}", "--tail=40", check=False
        ).stdout,
    ]
    for pod in cp.get_json("pods", "-n", services.NAMESPACE)["items"]:
        name = pod["metadata"]["name"]
        parts.append(f"--- {name}")
        parts.append(
            cp.kubectl("logs", "-n", services.NAMESPACE, name, "--tail=20", check=False).stdout
        )
    parts.append(deployed.node.logs("kubelet", 30))
    return "\n".join(parts)


def write_timings(path: Path, timings: dict[str, float]) -> None:
    path.write_text("\n".join(f"{k}: {v}s" for k, v in timings.items()) + "\n")
