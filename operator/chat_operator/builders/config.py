"""The non-secret configuration ConfigMap that every component reads through envFrom.

Every variable name comes from chat/config.py (the app's one declaration of its settings), so
what the operator writes is what the app reads; tests/operator/test_app_contract.py loads every
container's environment through `chat.config.load` to prove it.
"""

from __future__ import annotations

from chat.config import env_name
from chat_operator.builders.common import Cluster, Manifest, config_name, metadata
from chat_operator.config_keys import CONFIG_KEYS
from chat_operator.spec import ChatClusterSpec

ACCESS_TTL = env_name("access_ttl_s")
DRAIN = env_name("drain_timeout_s")
KEY_PREFIX = env_name("redis_key_prefix")
PUBLIC_URL = env_name("public_url")
ALLOWED_ORIGINS = env_name("allowed_origins")


class ConfigKeyError(ValueError):
    """`spec.config` names a variable the app does not read or the operator manages."""


def public_url(spec: ChatClusterSpec) -> str | None:
    """`spec.publicURL`, else the Ingress host (https when it has TLS); a wildcard host names
    no single origin, so it gives none."""
    if spec.public_url:
        return spec.public_url.rstrip("/")
    ingress = spec.ingress
    if ingress.enabled and ingress.host and not ingress.host.startswith("*"):
        return f"{'https' if ingress.tls_secret else 'http'}://{ingress.host}"
    return None


def config_data(cluster: Cluster) -> dict[str, str]:
    """Nothing version-dependent belongs here: a change rolls the pods, and a version change
    must not roll them before its migration has succeeded."""
    spec = cluster.spec
    refused = sorted(set(spec.config) - set(CONFIG_KEYS))
    if refused:
        # The CRD's CEL rule refuses these at admission; this guards an outdated CRD.
        raise ConfigKeyError(
            f"spec.config: {', '.join(refused)} cannot be set here (unknown to chatcluster, or "
            "set by the operator from another spec field)"
        )
    data = {
        KEY_PREFIX: spec.redis_key_prefix,
        ACCESS_TTL: str(spec.access_token_ttl_seconds),
        DRAIN: str(spec.drain_seconds),
    }
    if url := public_url(spec):
        data[PUBLIC_URL] = url
        data[ALLOWED_ORIGINS] = url
    data.update(spec.config)
    return data


def config_map(cluster: Cluster) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(cluster, config_name(cluster), "config"),
        "data": config_data(cluster),
    }
