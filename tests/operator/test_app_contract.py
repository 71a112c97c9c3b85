"""Every setting the examples promise reaches the app: each container the operator builds for
each example is started "on paper" — its env resolved the way the kubelet does (envFrom the
built ConfigMap, then env; Secret keys and the downward API as plausible values, plus the
image's own ENV), its args parsed by the CLI's own parser, and the two combined by the CLI's
own `settings_for` — which fails on any unknown or unparsable name. The ports the process
would listen on must be the ports the pod declares, and every Service and the ServiceMonitor
must point at a port the selected pods declare."""

from __future__ import annotations

import re
from typing import Any

import pytest
from chat_operator.builders import Cluster, Manifest, Rollout, children, migration_job

from chat.cli import build_parser, settings_for
from chat.config import Settings, env_name
from tests.operator.operator_examples import EXAMPLES, ROOT, cluster_from, load_example

EXAMPLE_FILES = sorted(p.name for p in EXAMPLES.glob("*.yaml"))
SECRET_VALUES = {
    env_name("redis_url"): "redis://:pw@redis:6379/0",
    env_name("postgres_dsn"): "postgresql://chat:pw@postgres:5432/chat",
    env_name("mongodb_uri"): "mongodb://chat:pw@mongo:27017/chat",
    env_name("jwt_secret"): "0123456789abcdef0123456789abcdef",
}
FIELD_VALUES = {"metadata.name": "chat-api-5d9c7b-x2x4z"}


def image_env() -> dict[str, str]:
    """The Dockerfile's runtime ENV (CHAT_HOST=0.0.0.0, ...): part of what a pod runs with."""
    runtime = (ROOT / "Dockerfile").read_text().split(" AS runtime", 1)[1]
    instruction = re.search(r"^ENV ((?:.*\\\n)*.*)$", runtime, re.M)
    assert instruction, "the runtime stage has no ENV"
    return dict(re.findall(r"\b([A-Z][A-Z0-9_]*)=(\S+)", instruction.group(1)))


def resolved_env(container: dict[str, Any], manifests: list[Manifest]) -> dict[str, str]:
    config_maps = {m["metadata"]["name"]: m for m in manifests if m["kind"] == "ConfigMap"}
    env = image_env()
    for source in container.get("envFrom", ()):
        name = source["configMapRef"]["name"]
        assert name in config_maps, f"envFrom names ConfigMap {name}, which is not built"
        env.update(config_maps[name]["data"])
    for item in container.get("env", ()):
        if "value" in item:
            env[item["name"]] = item["value"]
            continue
        ref = item["valueFrom"]
        if "secretKeyRef" in ref:
            env[item["name"]] = SECRET_VALUES[item["name"]]
        else:
            env[item["name"]] = FIELD_VALUES[ref["fieldRef"]["fieldPath"]]
    return env


def rendered(example: str) -> tuple[Cluster, list[Manifest]]:
    cluster = cluster_from(load_example(example))
    rollout = Rollout(image="img:1", secrets_checksum="abc", service_monitor_available=True)
    manifests = children(cluster, rollout)
    return cluster, [*manifests, migration_job(cluster, "img:1", rollout)]


def pod_templates(manifests: list[Manifest]) -> list[tuple[Manifest, dict[str, Any]]]:
    return [(m, m["spec"]["template"]) for m in manifests if m["kind"] in ("Deployment", "Job")]


def started(container: dict[str, Any], manifests: list[Manifest]) -> Settings:
    args = build_parser().parse_args(container["args"])
    return settings_for(args, resolved_env(container, manifests))


def test_every_example_is_covered() -> None:
    assert {"chatcluster-minimal.yaml", "chatcluster-full.yaml"} <= set(EXAMPLE_FILES)


@pytest.mark.parametrize("example", EXAMPLE_FILES)
def test_every_container_env_and_args_load(example: str) -> None:
    cluster, manifests = rendered(example)
    spec = cluster.spec
    seen = set()
    for owner, template in pod_templates(manifests):
        for container in template["spec"]["containers"]:
            settings = started(container, manifests)  # raises on anything unknown/unparsable
            seen.add(container["args"][0])
            assert settings.backend == "cluster"
            # What the spec promises is what the process runs with.
            assert settings.access_ttl_s == spec.access_token_ttl_seconds
            assert settings.drain_timeout_s == spec.drain_seconds
            assert settings.redis_key_prefix == spec.redis_key_prefix
            assert settings.pod_name == FIELD_VALUES["metadata.name"]
            for name, value in spec.config.items():
                assert resolved_env(container, manifests)[name] == value, owner["metadata"]
            if spec.mongodb is not None:
                assert settings.mongodb_uri == SECRET_VALUES["MONGODB_URI"]
    assert {"api", "ws", "migrate"} <= seen
    if spec.workers:
        assert "worker" in seen


def test_full_example_settings_reach_the_app() -> None:
    _, manifests = rendered("chatcluster-full.yaml")
    api = next(m for m, _ in pod_templates(manifests) if m["metadata"]["name"] == "chat-full-api")
    settings = started(api["spec"]["template"]["spec"]["containers"][0], manifests)
    assert settings.access_ttl_s == 600
    assert settings.log_level == "info"
    assert settings.limits.max_frame_bytes == 65536
    assert settings.drain_timeout_s == 45
    # Derived from the ingress (host with TLS): the browser's origin is allowed.
    assert settings.public_url == "https://chat.example.com"
    assert settings.origins == frozenset({"https://chat.example.com"})


@pytest.mark.parametrize("example", EXAMPLE_FILES)
def test_declared_ports_are_the_ports_the_process_listens_on(example: str) -> None:
    _, manifests = rendered(example)
    declared_by_component: dict[str, set[str]] = {}
    for owner, template in pod_templates(manifests):
        component = template["metadata"]["labels"]["app.kubernetes.io/component"]
        for container in template["spec"]["containers"]:
            ports = {p["name"]: p["containerPort"] for p in container.get("ports", ())}
            command = container["args"][0]
            if command == "migrate":
                assert ports == {}
                continue
            settings = started(container, manifests)
            assert ports["metrics"] == settings.metrics_port != 0, owner["metadata"]["name"]
            public = {"api": "http", "ws": "ws"}.get(command)
            if public:
                assert ports[public] == settings.port
                assert settings.host == "0.0.0.0"
            assert set(ports) == {"metrics"} | ({public} if public else set())
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                if probe in container:
                    action = container[probe].get("httpGet") or container[probe]["tcpSocket"]
                    assert action["port"] in ports
            declared_by_component.setdefault(component, set()).update(ports)

    services = [m for m in manifests if m["kind"] == "Service"]
    for service in services:
        component = service["spec"]["selector"]["app.kubernetes.io/component"]
        for port in service["spec"]["ports"]:
            if component in declared_by_component:
                assert port["targetPort"] in declared_by_component[component]
        assert "metrics" in {p["name"] for p in service["spec"]["ports"]}
    (monitor,) = [m for m in manifests if m["kind"] == "ServiceMonitor"]
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
    labels = monitor["spec"]["selector"]["matchLabels"]
    assert all(
        all(s["metadata"]["labels"].get(k) == v for k, v in labels.items()) for s in services
    )


def test_worker_queues_are_queues_actors_consume() -> None:
    from chat.worker import QUEUES

    _, manifests = rendered("chatcluster-full.yaml")
    for owner, template in pod_templates(manifests):
        container = template["spec"]["containers"][0]
        if container["args"][0] != "worker":
            continue
        args = build_parser().parse_args(container["args"])
        assert args.queues and set(args.queues) <= set(QUEUES), owner["metadata"]["name"]
    pools = cluster_from(load_example("chatcluster-full.yaml")).spec.workers
    assert {q for pool in pools for q in pool.queues} == set(QUEUES)


def _minimal_with(**spec: Any) -> Cluster:
    doc = load_example("chatcluster-minimal.yaml")
    doc["spec"].update(spec)
    return cluster_from(doc)


def _started_api(cluster: Cluster) -> Settings:
    rollout = Rollout(image="img:1", secrets_checksum="abc", service_monitor_available=False)
    manifests = children(cluster, rollout)
    (api,) = [
        m
        for m in manifests
        if m["kind"] == "Deployment" and m["metadata"]["name"] == f"{cluster.name}-api"
    ]
    return started(api["spec"]["template"]["spec"]["containers"][0], manifests)


def test_a_pool_of_several_queues_consumes_each_of_them() -> None:
    """`--queues` is nargs="*": one argument per queue. The builder used to join them with
    commas, which the worker took as one queue that no actor uses."""
    cluster = _minimal_with(workers=[{"name": "all", "queues": ["persist", "maintenance"]}])
    rollout = Rollout(image="img:1", secrets_checksum="abc", service_monitor_available=False)
    (worker,) = [
        m
        for m in children(cluster, rollout)
        if m["kind"] == "Deployment" and m["metadata"]["name"] == "chat-worker-all"
    ]
    args = build_parser().parse_args(worker["spec"]["template"]["spec"]["containers"][0]["args"])
    assert args.queues == ["persist", "maintenance"]


@pytest.mark.parametrize(
    ("spec", "origin"),
    [
        ({}, None),
        ({"ingress": {"enabled": True, "host": "chat.example.org"}}, "http://chat.example.org"),
        (
            {"ingress": {"enabled": True, "host": "chat.example.org", "tls": {"secretName": "t"}}},
            "https://chat.example.org",
        ),
        ({"ingress": {"enabled": True, "host": "*.example.org"}}, None),
        (
            {
                "publicURL": "https://chat.example.net/",
                "ingress": {"enabled": True, "host": "internal.example.org"},
            },
            "https://chat.example.net",
        ),
    ],
)
def test_public_url_and_origins_follow_the_ingress(
    spec: dict[str, Any], origin: str | None
) -> None:
    settings = _started_api(_minimal_with(**spec))
    if origin is None:
        assert settings.public_url == ""  # left unset: the app derives it from host:port
        assert settings.allowed_origins == ()
    else:
        assert settings.public_url == origin
        assert settings.origins == frozenset({origin})


def test_config_may_widen_the_origins() -> None:
    cluster = _minimal_with(
        publicURL="https://a.example",
        config={"CHAT_ALLOWED_ORIGINS": "https://a.example,https://b.example"},
    )
    assert _started_api(cluster).origins == frozenset({"https://a.example", "https://b.example"})


@pytest.mark.parametrize(
    "key", ["CHAT_MAX_FRAME_BYTES", "CHAT_PORT", "CHAT_METRICS_PORT", "CHAT_REDIS_KEY_PREFIX"]
)
def test_config_keys_the_app_does_not_read_or_the_operator_sets_are_refused(key: str) -> None:
    from chat_operator.builders.config import ConfigKeyError

    with pytest.raises(ConfigKeyError, match=key):
        _started_api(_minimal_with(config={key: "1"}))
