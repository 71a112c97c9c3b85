"""A thin, typed API-server client for exactly the kinds the operator manages.

Writes are server-side apply with one field manager (``chatcluster-operator``) and
``force=true``: the operator is the authority over the fields it sets, and SSA leaves fields
it does not set (e.g. ``replicas`` under an HPA) to their owners.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, cast

import kubernetes
from kubernetes.client.exceptions import ApiException

from chat_operator import FIELD_MANAGER, GROUP, PLURAL, VERSION

Obj = dict[str, Any]

# (apiVersion, kind) -> resource plural. Anything else is a programming error.
PLURALS: dict[tuple[str, str], str] = {
    ("v1", "ConfigMap"): "configmaps",
    ("v1", "Secret"): "secrets",
    ("v1", "Service"): "services",
    ("apps/v1", "Deployment"): "deployments",
    ("batch/v1", "Job"): "jobs",
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "horizontalpodautoscalers",
    ("policy/v1", "PodDisruptionBudget"): "poddisruptionbudgets",
    ("networking.k8s.io/v1", "Ingress"): "ingresses",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitors",
    (f"{GROUP}/{VERSION}", "ChatCluster"): PLURAL,
}

# Children the operator may have to delete when the spec stops asking for them.
PRUNABLE: tuple[tuple[str, str], ...] = (
    ("apps/v1", "Deployment"),
    ("v1", "Service"),
    ("v1", "ConfigMap"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("policy/v1", "PodDisruptionBudget"),
    ("networking.k8s.io/v1", "Ingress"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("batch/v1", "Job"),
)


def collection_path(api_version: str, kind: str, namespace: str) -> str:
    plural = PLURALS[(api_version, kind)]
    prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    return f"{prefix}/namespaces/{namespace}/{plural}"


class Kube:
    """Blocking calls; Kopf runs sync handlers in its thread pool."""

    def __init__(self, api_client: Any) -> None:
        self._api = api_client

    @classmethod
    def from_environment(cls) -> Kube:
        """In-cluster service account if present, else KUBECONFIG (as the tests use)."""
        try:
            kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config()  # type: ignore[no-untyped-call]
        return cls(kubernetes.client.ApiClient())

    def _call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
    ) -> Obj:
        method, url, headers, payload, post = self._api.param_serialize(
            method=method,
            resource_path=path,
            query_params=query or [],
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self._api.call_api(
            method, url, header_params=headers, body=payload, post_params=post
        )
        response.read()
        text = response.data.decode() if response.data else ""
        if not 200 <= response.status <= 299:
            raise ApiException.from_response(http_resp=response, body=text, data=None)
        return cast(Obj, json.loads(text) if text else {})

    def apply(self, manifest: Mapping[str, Any], manager: str = FIELD_MANAGER) -> Obj:
        meta = manifest["metadata"]
        path = collection_path(manifest["apiVersion"], manifest["kind"], meta["namespace"])
        return self._call(
            "PATCH",
            f"{path}/{meta['name']}",
            body=manifest,
            query=[("fieldManager", manager), ("force", "true")],
            content_type="application/apply-patch+yaml",
        )

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        try:
            return self._call("GET", f"{collection_path(api_version, kind, namespace)}/{name}")
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, api_version: str, kind: str, namespace: str, selector: str) -> list[Obj]:
        found = self._call(
            "GET",
            collection_path(api_version, kind, namespace),
            query=[("labelSelector", selector)],
        )
        return cast(list[Obj], found.get("items") or [])

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        try:
            self._call(
                "DELETE", f"{collection_path(api_version, kind, namespace)}/{name}", body=body
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        """Merge patch on the status subresource; conditions are replaced as a whole list."""
        path = collection_path(f"{GROUP}/{VERSION}", "ChatCluster", namespace)
        self._call(
            "PATCH",
            f"{path}/{name}/status",
            body={"status": dict(status)},
            content_type="application/merge-patch+json",
        )

    def serves(self, api_version: str, kind: str) -> bool:
        """Discovery check, e.g. whether the ServiceMonitor CRD is installed."""
        try:
            found = self._call("GET", f"/apis/{api_version}")
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return any(r.get("kind") == kind for r in found.get("resources") or ())

    @staticmethod
    def describe(exc: ApiException) -> str:
        try:
            return str(json.loads(exc.body or "{}").get("message", exc.reason))
        except (TypeError, ValueError):
            return str(exc.reason)
