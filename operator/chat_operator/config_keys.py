"""Which CHAT_* variables `spec.config` may set. Every name comes from chat/config.py (the
app's one declaration of its settings); the CRD schema (`chat_operator.spec`) refuses any
other key at admission, and the ConfigMap builder (`builders.config`) refuses it again for a
cluster whose CRD is out of date.
"""

from __future__ import annotations

from chat.config import KNOWN_ENV, env_name

MANAGED = frozenset(
    env_name(attr)
    for attr in (
        "backend",
        "host",
        "port",
        "metrics_port",
        "pod_name",
        "jwt_secret",
        "public_url",
        "redis_key_prefix",
        "access_ttl_s",
        "drain_timeout_s",
    )
)
"""Names the operator sets from the spec (or the pod template): `spec.config` may not set them,
or the pod would listen elsewhere than it declares, or a spec field would be silently
overridden. CHAT_ALLOWED_ORIGINS is not among them: config may widen the derived origin."""
CONFIG_KEYS = tuple(sorted(n for n in KNOWN_ENV if n.startswith("CHAT_") and n not in MANAGED))
"""What `spec.config` may set (the CRD refuses anything else)."""
