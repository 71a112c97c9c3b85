"""Children are pure functions of the spec: check the decisions the builders make, and that
every manifest is valid against the Kubernetes OpenAPI schema of the version we test on."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import kubernetes_validate
import pytest
from chat_operator.builders import Cluster, Rollout, children, migration_job
from chat_operator.builders.common import CHECKSUM_ANNOTATION, migration_job_name

from tests.operator.operator_examples import cluster_from, load_example

K8S_VERSION = "1.34.0"


def by_kind(manifests: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


@pytest.mark.parametrize("example", ["chatcluster-minimal.yaml", "chatcluster-full.yaml"])
def test_every_child_is_valid_kubernetes(example: str, rollout: Rollout) -> None:
    cluster = cluster_from(load_example(example))
    manifests = [*children(cluster, rollout), migration_job(cluster, "img:1", rollout)]
    checked = 0
    for manifest in manifests:
        if manifest["kind"] == "ServiceMonitor":
            continue  # not a core API; its shape is asserted in test_service_monitor
        kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)
        checked += 1
    assert checked >= 8


def test_children_carry_controller_owner_and_labels(full: Cluster, rollout: Rollout) -> None:
    for manifest in children(full, rollout):
        meta = manifest["metadata"]
        assert meta["namespace"] == "team-a"
        (owner,) = meta["ownerReferences"]
        assert owner["uid"] == full.uid
        assert owner["controller"] is True
        assert owner["kind"] == "ChatCluster"
        assert meta["labels"]["app.kubernetes.io/instance"] == "chat-full"
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "chatcluster-operator"


def test_minimal_children(minimal: Cluster, rollout: Rollout) -> None:
    kinds = sorted(f"{m['kind']}/{m['metadata']['name']}" for m in children(minimal, rollout))
    assert kinds == [
        "ConfigMap/chat-config",
        "Deployment/chat-api",
        "Deployment/chat-ws",
        "PodDisruptionBudget/chat-api",
        "PodDisruptionBudget/chat-ws",
        "Service/chat-api",
        "Service/chat-ws",
        "ServiceMonitor/chat",
    ]


def test_no_workloads_before_the_first_migration(minimal: Cluster, rollout: Rollout) -> None:
    kinds = {m["kind"] for m in children(minimal, replace(rollout, image=None))}
    assert "Deployment" not in kinds
    assert "ConfigMap" in kinds


def test_autoscaling_leaves_replicas_to_the_hpa(full: Cluster, rollout: Rollout) -> None:
    manifests = children(full, rollout)
    deployments = by_kind(manifests, "Deployment")
    hpas = by_kind(manifests, "HorizontalPodAutoscaler")
    assert "replicas" not in deployments["chat-full-ws"]["spec"]
    assert "replicas" not in deployments["chat-full-worker-maintenance"]["spec"]
    assert deployments["chat-full-api"]["spec"]["replicas"] == 3
    assert deployments["chat-full-worker-default"]["spec"]["replicas"] == 2
    assert sorted(hpas) == ["chat-full-worker-maintenance", "chat-full-ws"]
    ws = hpas["chat-full-ws"]["spec"]
    assert (ws["minReplicas"], ws["maxReplicas"]) == (2, 10)
    assert ws["metrics"][0]["resource"]["target"]["averageUtilization"] == 60
    media = hpas["chat-full-worker-maintenance"]["spec"]["metrics"][0]["resource"]
    assert media["name"] == "memory"


def test_websocket_pods_drain(full: Cluster, rollout: Rollout) -> None:
    pod = by_kind(children(full, rollout), "Deployment")["chat-full-ws"]["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert container["lifecycle"]["preStop"] == {"sleep": {"seconds": 5}}
    assert pod["spec"]["terminationGracePeriodSeconds"] == 5 + 45 + 5
    assert container["args"] == ["ws", "--port", "8081", "--metrics-port", "9191"]
    assert "command" not in container  # the image's tini entrypoint stays PID 1
    assert container["ports"][0]["containerPort"] == 8081


def test_pods_are_hardened(full: Cluster, rollout: Rollout) -> None:
    for deployment in by_kind(children(full, rollout), "Deployment").values():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            sec = container["securityContext"]
            assert sec["readOnlyRootFilesystem"] is True
            assert sec["allowPrivilegeEscalation"] is False
            assert sec["capabilities"] == {"drop": ["ALL"]}


def test_credentials_only_come_from_secrets(
    full: Cluster, minimal: Cluster, rollout: Rollout
) -> None:
    for cluster in (full, minimal):
        api = by_kind(children(cluster, rollout), "Deployment")[f"{cluster.name}-api"]
        env = {e["name"]: e for e in api["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["CHAT_JWT_SECRET"]["valueFrom"]["secretKeyRef"]["key"] == "jwt-secret"
        assert env["POSTGRES_DSN"]["valueFrom"]["secretKeyRef"]["key"] == "dsn"
        for item in env.values():
            assert "@" not in item.get("value", "")
    minimal_env = by_kind(children(minimal, rollout), "Deployment")["chat-api"]
    redis = minimal_env["spec"]["template"]["spec"]["containers"][0]["env"][0]
    assert redis == {"name": "REDIS_URL", "value": "redis://redis:6379/0"}


def test_worker_arguments(full: Cluster, rollout: Rollout) -> None:
    worker = by_kind(children(full, rollout), "Deployment")["chat-full-worker-default"]
    container = worker["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == [
        "worker",
        "--processes",
        "2",
        "--threads",
        "8",
        "--metrics-port",
        "9191",
        "--queues",
        "persist",
    ]
    selector = worker["spec"]["selector"]["matchLabels"]
    assert selector["chatcluster.dev/worker-pool"] == "default"


def test_secret_rotation_changes_pod_template(minimal: Cluster, rollout: Rollout) -> None:
    def checksums(r: Rollout) -> set[str]:
        return {
            d["spec"]["template"]["metadata"]["annotations"][CHECKSUM_ANNOTATION]
            for d in by_kind(children(minimal, r), "Deployment").values()
        }

    before = checksums(rollout)
    assert len(before) == 1
    assert checksums(replace(rollout, secrets_checksum="rotated")) != before
    assert checksums(rollout) == before  # deterministic: no spurious rollouts


def test_pdbs(full: Cluster, rollout: Rollout) -> None:
    pdbs = by_kind(children(full, rollout), "PodDisruptionBudget")
    assert pdbs["chat-full-api"]["spec"]["minAvailable"] == 2
    assert pdbs["chat-full-ws"]["spec"]["maxUnavailable"] == 1
    assert "chat-full-worker-maintenance" not in pdbs


def test_ingress_routes_websocket_path(full: Cluster, rollout: Rollout) -> None:
    ingress = by_kind(children(full, rollout), "Ingress")["chat-full"]["spec"]
    paths = ingress["rules"][0]["http"]["paths"]
    assert [(p["path"], p["backend"]["service"]["name"]) for p in paths] == [
        ("/ws", "chat-full-ws"),
        ("/", "chat-full-api"),
    ]
    assert ingress["tls"] == [{"hosts": ["chat.example.com"], "secretName": "chat-tls"}]
    assert ingress["ingressClassName"] == "nginx"


def test_service_monitor_only_when_its_crd_exists(full: Cluster, rollout: Rollout) -> None:
    monitors = by_kind(children(full, rollout), "ServiceMonitor")
    spec = monitors["chat-full"]["spec"]
    # /metrics is on the internal port only: the public http/ws ports do not serve it.
    assert [e["port"] for e in spec["endpoints"]] == ["metrics"]
    assert monitors["chat-full"]["metadata"]["labels"]["release"] == "prometheus"
    absent = children(full, replace(rollout, service_monitor_available=False))
    assert by_kind(absent, "ServiceMonitor") == {}


def test_migration_job_per_image(minimal: Cluster, rollout: Rollout) -> None:
    job = migration_job(minimal, "ghcr.io/chatcluster/chatcluster:1.0.0", rollout)
    assert job["metadata"]["name"] == migration_job_name(
        minimal, "ghcr.io/chatcluster/chatcluster:1.0.0"
    )
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert migration_job_name(minimal, "a:1") != migration_job_name(minimal, "a:2")


def test_image_reference_defaults_tag_to_version(full: Cluster, minimal: Cluster) -> None:
    assert minimal.spec.image_reference == "ghcr.io/chatcluster/chatcluster:1.0.0"
    assert full.spec.image_reference == "registry.example.com:5000/chat/chatcluster:1.2.0"


def test_version_change_alone_does_not_touch_workloads(minimal: Cluster, rollout: Rollout) -> None:
    """Until the migration succeeds the reconciler keeps the old image; nothing else in the
    Deployments may depend on spec.version, or pods would roll before the migration."""
    image = replace(minimal.spec.image, repository="repo")
    bumped = replace(minimal, spec=replace(minimal.spec, version="9.9.9", image=image))
    before = by_kind(children(minimal, rollout), "Deployment")
    assert by_kind(children(bumped, rollout), "Deployment") == before
