"""Regular expressions and CEL rules the ChatCluster schema shares between fields.

Every string has a maxLength and every list a maxItems: the API server estimates the cost of
CEL rules from these bounds and refuses a CRD whose rules could run unbounded.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# A DNS-1123 subdomain: what the name of a Secret, PriorityClass or IngressClass must be.
OBJECT_NAME = DNS_LABEL[:-1] + r"(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
QUANTITY = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
# An OCI repository: optional registry host[:port], then lowercase path components.
IMAGE_REPOSITORY = (
    r"^([a-zA-Z0-9]([-a-zA-Z0-9.]*[a-zA-Z0-9])?(:[0-9]+)?/)?"
    r"[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*(/[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*)*$"
)
IMAGE_TAG = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
# Semantic version WITHOUT build metadata: the version is also the default image tag, and
# `+` is not allowed in an OCI tag.
SEMVER = r"^v?[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$"
MAX_NAME = 30  # "<name>-worker-<pool>" must stay a 63-character DNS label.
# A DNS-1123 subdomain, optionally a wildcard: what an Ingress host must be.
DNS_SUBDOMAIN = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# A label or annotation key: optional DNS-subdomain prefix, then a name of at most 63 chars.
QUALIFIED_KEY = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LABEL_VALUE = r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$"
# Query parameters that carry a credential (libpq, redis-py, PyMongo spellings).
CREDENTIAL_QUERY = (
    r"(?i)[?&;](password|passwd|pwd|pass|secret|token|access_?token|api_?key|sslpassword)="
)
# Strip the optional leading "v" so CEL's semver() can compare the versions.
_BARE_VERSION = "({v}.startsWith('v') ? {v}.substring(1) : {v})"


def cel_list(items: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{item}'" for item in items) + "]"


def key_rule(what: str) -> Schema:
    """Map keys must be label keys, or Kubernetes refuses the child that carries them."""
    return {
        "rule": f"self.all(k, k.size() <= 253 && k.matches(r'{QUALIFIED_KEY}'))",
        "message": f"{what} keys must be valid label keys ([prefix/]name, name at most 63 "
        "characters of alphanumerics, '-', '_' and '.')",
    }


def matches(pattern: str, message: str) -> Schema:
    """A pattern checked by CEL rather than ``pattern``, so the error says what is wrong."""
    return {"rule": f"self.matches(r'{pattern}')", "message": message}


def downgrade_rule() -> Schema:
    """A transition rule (``oldSelf``): only checked on update, never on create."""
    new, old = _BARE_VERSION.format(v="self.version"), _BARE_VERSION.format(v="oldSelf.version")
    return {
        "rule": f"self.allowDowngrade || semver({new}).compareTo(semver({old})) >= 0",
        "messageExpression": "'version ' + self.version + ' is older than ' + oldSelf.version"
        " + ': a downgrade runs the old release against a schema its successor migrated;"
        " set spec.allowDowngrade: true to force it'",
        "fieldPath": ".version",
        "reason": "FieldValueForbidden",
    }
