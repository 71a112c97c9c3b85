"""A thin, typed API-server client for exactly the kinds the operator manages.

Writes are server-side apply with one field manager (``chatcluster-operator``) and
``force=true``: the operator is the authority over the fields it sets, and SSA leaves fields
it does not set (e.g. ``replicas`` under an HPA) to their owners.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
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
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrules",
    ("v1", "Event"): "events",
    ("coordination.k8s.io/v1", "Lease"): "leases",
    (f"{GROUP}/{VERSION}", "ChatCluster"): PLURAL,
}
CLUSTER_API_VERSION = f"{GROUP}/{VERSION}"
# Core Event messages longer than this are refused by the API server.
EVENT_MESSAGE_MAX = 1024

# Children the operator may have to delete when the spec stops asking for them.
PRUNABLE: tuple[tuple[str, str], ...] = (
    ("apps/v1", "Deployment"),
    ("v1", "Service"),
    ("v1", "ConfigMap"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("policy/v1", "PodDisruptionBudget"),
    ("networking.k8s.io/v1", "Ingress"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("batch/v1", "Job"),
)


def collection_path(api_version: str, kind: str, namespace: str) -> str:
    plural = PLURALS[(api_version, kind)]
    prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    return f"{prefix}/namespaces/{namespace}/{plural}"


Counter = Callable[[str, str], None]  # (HTTP method, resource plural) -> count one request


def _resource_of(path: str) -> str:
    """The resource plural in an API path, for request accounting."""
    parts = [p for p in path.split("/") if p]
    if "namespaces" in parts:
        rest = parts[parts.index("namespaces") + 2 :]
        return "/".join([rest[0], *rest[2:3]]) if rest else "namespaces"
    return parts[-1] if parts else ""


class Kube:
    """Blocking calls, made from the reconcile worker threads.

    Every request is counted (``count``), so the requests per reconcile pass can be measured
    and reported (docs/operator.md)."""

    def __init__(self, api_client: Any, count: Counter | None = None) -> None:
        self._api = api_client
        self._count = count

    @classmethod
    def from_environment(cls, count: Counter | None = None) -> Kube:
        """In-cluster service account if present, else KUBECONFIG (as the tests use)."""
        try:
            kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config()  # type: ignore[no-untyped-call]
        return cls(kubernetes.client.ApiClient(), count)

    def _call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
    ) -> Obj:
        if self._count is not None:
            self._count(method, _resource_of(path))
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

    def json_patch(
        self, api_version: str, kind: str, namespace: str, name: str, ops: list[Obj]
    ) -> Obj:
        """An RFC 6902 patch, for the few fields server-side apply cannot take back from
        another manager (see :mod:`chat_operator.drift`)."""
        return self._call(
            "PATCH",
            f"{collection_path(api_version, kind, namespace)}/{name}",
            body=ops,
            query=[("fieldManager", FIELD_MANAGER)],
            content_type="application/json-patch+json",
        )

    def create(self, manifest: Mapping[str, Any]) -> Obj:
        meta = manifest["metadata"]
        path = collection_path(manifest["apiVersion"], manifest["kind"], meta["namespace"])
        return self._call(
            "POST", path, body=dict(manifest), query=[("fieldManager", FIELD_MANAGER)]
        )

    def replace(self, manifest: Mapping[str, Any]) -> Obj:
        """PUT with the manifest's resourceVersion: fails with 409 if someone wrote first."""
        meta = manifest["metadata"]
        path = collection_path(manifest["apiVersion"], manifest["kind"], meta["namespace"])
        return self._call(
            "PUT",
            f"{path}/{meta['name']}",
            body=dict(manifest),
            query=[("fieldManager", FIELD_MANAGER)],
        )

    def post_event(
        self, involved: Mapping[str, Any], event_type: str, reason: str, message: str
    ) -> None:
        """A core/v1 Event on ``involved`` (what ``kubectl describe`` and ``kubectl events``
        show)."""
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        meta = involved["metadata"]
        self.create(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
                "involvedObject": {
                    "apiVersion": involved.get("apiVersion", CLUSTER_API_VERSION),
                    "kind": involved.get("kind", "ChatCluster"),
                    "name": meta["name"],
                    "namespace": meta["namespace"],
                    "uid": meta.get("uid", ""),
                },
                "type": event_type,
                "reason": reason,
                "message": message[:EVENT_MESSAGE_MAX],
                "firstTimestamp": now,
                "lastTimestamp": now,
                "count": 1,
                "source": {"component": FIELD_MANAGER},
                "reportingComponent": FIELD_MANAGER,
                "reportingInstance": socket.gethostname()[:128],
            }
        )

    def list_clusters(self, namespace: str | None = None) -> list[Obj]:
        """The ChatClusters in ``namespace``, or in all namespaces."""
        where = f"namespaces/{namespace}/" if namespace else ""
        found = self._call("GET", f"/apis/{GROUP}/{VERSION}/{where}{PLURAL}")
        return cast(list[Obj], found.get("items") or [])

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
    def describe(exc: BaseException) -> str:
        """The API server's own message (e.g. the 422's field errors), else the exception."""
        if not isinstance(exc, ApiException):
            return f"{type(exc).__name__}: {exc}"
        try:
            return str(json.loads(exc.body or "{}").get("message") or exc.reason)
        except (TypeError, ValueError, AttributeError):
            return f"{exc.status} {exc.reason}"
