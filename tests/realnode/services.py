"""What a platform team brings to a ChatCluster, as pods on the real node: Redis (AOF with
fsync always, a password), PostgreSQL 15 (SCRAM password auth) and FerretDB as the
MongoDB-protocol server, each behind a Service, and the Secrets the ChatCluster references.
Plus the ChatCluster itself, as a user would write it."""

from __future__ import annotations

import secrets
from typing import Any

from tests.realnode.images import REPOSITORY, SERVICES, VERSIONS
from tests.realnode.node import INGRESS_CLASS

NAMESPACE = "chat"
CLUSTER = "chat"
HOST = "chat.test"
ACCESS_TTL_S = 3600
REDIS_PASSWORD = secrets.token_hex(12)
POSTGRES_PASSWORD = secrets.token_hex(12)


def secret(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "stringData": data,
    }


def secrets_for(jwt_secret: str) -> list[dict[str, Any]]:
    return [
        secret("chat-redis", {"url": f"redis://:{REDIS_PASSWORD}@redis:6379/0"}),
        secret(
            "chat-db",
            {"dsn": f"postgresql://chat:{POSTGRES_PASSWORD}@postgres:5432/chat"},
        ),
        secret("chat-mongo", {"uri": "mongodb://mongo:27017/"}),
        secret("chat-jwt", {"jwt-secret": jwt_secret}),
    ]


def _service_pair(name: str, port: int, script: str) -> list[dict[str, Any]]:
    labels = {"app": name}
    container = {
        "name": name,
        "image": SERVICES,
        "imagePullPolicy": "Never",
        "command": ["/bin/sh", "-ec", script],
        "ports": [{"containerPort": port}],
        "readinessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 1},
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}},
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {
                "replicas": 1,
                "strategy": {"type": "Recreate"},
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [container],
                        "volumes": [{"name": "data", "emptyDir": {}}],
                        "enableServiceLinks": False,
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"selector": labels, "ports": [{"port": port, "targetPort": port}]},
        },
    ]


POSTGRES = "/usr/lib/postgresql/15/bin"


def backing_services() -> list[dict[str, Any]]:
    redis = (
        f"exec redis-server --bind 0.0.0.0 --protected-mode no --requirepass {REDIS_PASSWORD} "
        "--appendonly yes --appendfsync always --dir /data --save ''"
    )
    postgres = f"""
install -d -o postgres -m 700 /data/pg
printf '%s' '{POSTGRES_PASSWORD}' > /tmp/pw && chown postgres /tmp/pw
runuser -u postgres -- {POSTGRES}/initdb -D /data/pg -U chat --pwfile=/tmp/pw \
  --auth=scram-sha-256 -E UTF8 >/dev/null
echo 'host all all 0.0.0.0/0 scram-sha-256' >> /data/pg/pg_hba.conf
echo 'CREATE DATABASE chat' \
  | runuser -u postgres -- {POSTGRES}/postgres --single -D /data/pg postgres >/dev/null
exec runuser -u postgres -- {POSTGRES}/postgres -D /data/pg -c listen_addresses='*' \
  -c unix_socket_directories=/tmp
"""
    ferretdb = (
        "exec ferretdb --listen-addr=0.0.0.0:27017 --handler=sqlite --sqlite-url=file:/data/ "
        "--state-dir=/data --telemetry=disable --log-level=warn"
    )
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        *_service_pair("redis", 6379, redis),
        *_service_pair("postgres", 5432, postgres),
        *_service_pair("mongo", 27017, ferretdb),
    ]


WS_TARGET_CPU_PERCENT = 40
"""The gateways' HPA target: the HPA scales up once the average is over it by its 10%
tolerance."""


def chat_cluster(version: str = VERSIONS[0]) -> dict[str, Any]:
    small = {"requests": {"cpu": "50m", "memory": "96Mi"}, "limits": {"memory": "400Mi"}}
    return {
        "apiVersion": "chatcluster.dev/v1alpha1",
        "kind": "ChatCluster",
        "metadata": {"name": CLUSTER, "namespace": NAMESPACE},
        "spec": {
            "version": version,
            "image": {"repository": REPOSITORY, "pullPolicy": "Never"},
            "api": {"replicas": 1, "resources": small},
            "websocket": {
                "autoscaling": {
                    "minReplicas": 1,
                    "maxReplicas": 2,
                    "targetCPUUtilizationPercentage": WS_TARGET_CPU_PERCENT,
                    "scaleDownStabilizationSeconds": 600,
                },
                "drainSeconds": 5,
                "resources": small,
            },
            "workers": [
                {
                    "name": "default",
                    "queues": ["persist", "maintenance"],
                    "replicas": 1,
                    "resources": small,
                }
            ],
            "ingress": {"enabled": True, "className": INGRESS_CLASS, "host": HOST},
            "redis": {"secretRef": {"name": "chat-redis"}},
            "postgres": {"secretRef": {"name": "chat-db"}},
            "mongodb": {"secretRef": {"name": "chat-mongo"}},
            # Longer than the default 900 s, so the test sees the spec reach the app (and no
            # token expires while the operations run).
            "auth": {"jwtSecretRef": {"name": "chat-jwt"}, "accessTokenTTLSeconds": ACCESS_TTL_S},
            "monitoring": {"serviceMonitor": {"enabled": False}},
        },
    }
