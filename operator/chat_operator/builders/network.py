"""The Ingress: WebSocket path to the ws Service, everything else to the api Service."""

from __future__ import annotations

from typing import Any

from chat_operator.builders.common import Cluster, Manifest, api_name, metadata, ws_name


def ingress(cluster: Cluster) -> Manifest | None:
    spec = cluster.spec.ingress
    if not spec.enabled or spec.host is None:
        return None

    def path(prefix: str, service: str, port: str) -> dict[str, Any]:
        return {
            "path": prefix,
            "pathType": "Prefix",
            "backend": {"service": {"name": service, "port": {"name": port}}},
        }

    body: dict[str, Any] = {
        "rules": [
            {
                "host": spec.host,
                "http": {
                    "paths": [
                        path(spec.websocket_path, ws_name(cluster), "ws"),
                        path("/", api_name(cluster), "http"),
                    ]
                },
            }
        ]
    }
    if spec.class_name:
        body["ingressClassName"] = spec.class_name
    if spec.tls_secret:
        body["tls"] = [{"hosts": [spec.host], "secretName": spec.tls_secret}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata(
            cluster, cluster.name, "ingress", annotations=dict(spec.annotations) or None
        ),
        "spec": body,
    }


def endpoints(cluster: Cluster) -> dict[str, str]:
    """Addresses reported in status so users need not reverse-engineer Service names."""
    ns = cluster.namespace
    result = {
        "api": f"http://{api_name(cluster)}.{ns}.svc:80",
        "websocket": f"ws://{ws_name(cluster)}.{ns}.svc:80/ws",
    }
    spec = cluster.spec.ingress
    if spec.enabled and spec.host:
        result["ingress"] = f"{'https' if spec.tls_secret else 'http'}://{spec.host}/"
    return result
