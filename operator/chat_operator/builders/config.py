"""The non-secret configuration ConfigMap that every component reads through envFrom."""

from __future__ import annotations

from chat_operator.builders.common import Cluster, Manifest, config_name, metadata


def config_data(cluster: Cluster) -> dict[str, str]:
    """Nothing version-dependent belongs here: a change rolls the pods, and a version change
    must not roll them before its migration has succeeded."""
    spec = cluster.spec
    data = {
        "CHAT_REDIS_KEY_PREFIX": spec.redis_key_prefix,
        "CHAT_ACCESS_TOKEN_TTL_SECONDS": str(spec.access_token_ttl_seconds),
        "CHAT_WS_DRAIN_SECONDS": str(spec.drain_seconds),
    }
    data.update(spec.config)
    return data


def config_map(cluster: Cluster) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(cluster, config_name(cluster), "config"),
        "data": config_data(cluster),
    }
