"""Deployments and Services for the api, websocket and worker components.

When a component autoscales, its Deployment is built WITHOUT ``spec.replicas``: under
server-side apply that leaves the field to the HPA instead of fighting it.

Each container's args name its ports explicitly, the same numbers the pod declares: the public
one (`http` / `ws`) and the internal `metrics` one, which every Service exposes for the
ServiceMonitor but the Ingress never routes.
"""

from __future__ import annotations

from typing import Any

from chat_operator.builders import pods
from chat_operator.builders.common import (
    API_PORT,
    METRICS_PORT,
    METRICS_PORT_NAME,
    WS_PORT,
    Cluster,
    Manifest,
    api_name,
    metadata,
    selector_labels,
    worker_name,
    ws_name,
)
from chat_operator.spec import Component, WorkerPool

# Time for endpoint controllers and ingresses to stop routing to a terminating WebSocket pod
# before it receives SIGTERM and starts closing sockets with code 1012.
PRESTOP_SLEEP_SECONDS = 5
# Slack after the drain so the kubelet does not SIGKILL a pod that is finishing its last close.
DRAIN_SLACK_SECONDS = 5


def _ports(name: str | None = None, port: int | None = None) -> list[dict[str, Any]]:
    ports = [] if name is None else [{"name": name, "containerPort": port, "protocol": "TCP"}]
    ports.append({"name": METRICS_PORT_NAME, "containerPort": METRICS_PORT, "protocol": "TCP"})
    return ports


def _server_args(command: str, port: int) -> list[str]:
    return [command, "--port", str(port), "--metrics-port", str(METRICS_PORT)]


def _http_probes(port: str) -> dict[str, Any]:
    return {
        "startupProbe": {
            "httpGet": {"path": "/healthz", "port": port},
            "periodSeconds": 2,
            "failureThreshold": 30,
        },
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": port},
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": port},
            "periodSeconds": 5,
            "failureThreshold": 2,
        },
    }


def _deployment(
    cluster: Cluster,
    name: str,
    component_label: str,
    component: Component,
    pod: dict[str, Any],
    template_checksum: str,
    pool: str | None = None,
    max_unavailable: int | str = 0,
) -> Manifest:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": selector_labels(cluster, component_label, pool)},
        "revisionHistoryLimit": 5,
        "progressDeadlineSeconds": 600,
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": max_unavailable, "maxSurge": "25%"},
        },
        "template": pods.template(
            cluster, component_label, pod, template_checksum, component, pool
        ),
    }
    if component.autoscaling is None:
        spec["replicas"] = component.replicas
    meta = metadata(cluster, name, component_label, pool)
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": spec}


def api_deployment(cluster: Cluster, image: str, template_checksum: str) -> Manifest:
    component = cluster.spec.api
    box = pods.container(cluster, "api", image, _server_args("api", API_PORT), component)
    box["ports"] = _ports("http", API_PORT)
    box.update(_http_probes("http"))
    pod = pods.pod_spec(cluster, [box], component, "api")
    return _deployment(cluster, api_name(cluster), "api", component, pod, template_checksum)


def ws_deployment(cluster: Cluster, image: str, template_checksum: str) -> Manifest:
    component = cluster.spec.websocket
    box = pods.container(cluster, "websocket", image, _server_args("ws", WS_PORT), component)
    box["ports"] = _ports("ws", WS_PORT)
    box.update(_http_probes("ws"))
    box["lifecycle"] = {"preStop": {"sleep": {"seconds": PRESTOP_SLEEP_SECONDS}}}
    pod = pods.pod_spec(cluster, [box], component, "websocket")
    pod["terminationGracePeriodSeconds"] = (
        PRESTOP_SLEEP_SECONDS + cluster.spec.drain_seconds + DRAIN_SLACK_SECONDS
    )
    return _deployment(cluster, ws_name(cluster), "websocket", component, pod, template_checksum)


def worker_deployment(
    cluster: Cluster, pool: WorkerPool, image: str, template_checksum: str
) -> Manifest:
    # `--queues` takes one argument per queue (nargs="*"): a comma-joined string would be one
    # queue name that no actor uses, and the pool would consume nothing.
    args = [
        "worker",
        "--processes",
        str(pool.processes),
        "--threads",
        str(pool.threads),
        "--metrics-port",
        str(METRICS_PORT),
        "--queues",
        *pool.queues,
    ]
    box = pods.container(cluster, "worker", image, args, pool.component)
    # One port however many --processes: the worker's supervisor sums its children's samples.
    box["ports"] = _ports()
    box["livenessProbe"] = {
        "tcpSocket": {"port": METRICS_PORT_NAME},
        "periodSeconds": 10,
        "failureThreshold": 3,
    }
    pod = pods.pod_spec(cluster, [box], pool.component, "worker", pool.name)
    # Workers finish the message in hand; Dramatiq requeues unacked work on shutdown.
    pod["terminationGracePeriodSeconds"] = 60
    return _deployment(
        cluster,
        worker_name(cluster, pool.name),
        "worker",
        pool.component,
        pod,
        template_checksum,
        pool.name,
        max_unavailable="25%",
    )


def _service(
    cluster: Cluster,
    name: str,
    component_label: str,
    port_name: str | None,
    port: int = 80,
    headless: bool = False,
) -> Manifest:
    """A Service with the component's public port (if any) and its `metrics` port, which the
    ServiceMonitor scrapes (label ``chatcluster.dev/metrics``)."""
    meta = metadata(cluster, name, component_label)
    meta["labels"]["chatcluster.dev/metrics"] = "true"
    ports = [] if port_name is None else [(port_name, port)]
    ports.append((METRICS_PORT_NAME, METRICS_PORT))
    spec: dict[str, Any] = {
        "type": "ClusterIP",
        "selector": selector_labels(cluster, component_label),
        "ports": [
            {"name": named, "port": number, "targetPort": named, "protocol": "TCP"}
            for named, number in ports
        ],
    }
    if headless:
        spec["clusterIP"] = "None"
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec}


def api_service(cluster: Cluster) -> Manifest:
    return _service(cluster, api_name(cluster), "api", "http", 80)


def ws_service(cluster: Cluster) -> Manifest:
    return _service(cluster, ws_name(cluster), "websocket", "ws", 80)


def workers_service(cluster: Cluster) -> Manifest:
    """Headless: it exists only so a ServiceMonitor can find every worker pod's metrics."""
    return _service(cluster, f"{cluster.name}-workers", "worker", None, headless=True)
