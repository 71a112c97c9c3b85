"""Operator-wide settings from the environment, read once at start-up (the chart sets them on
the operator's Deployment). Unlike a ChatCluster's spec they are the platform team's, the same
for every cluster the operator reconciles; a bad value stops the operator at start-up with a
message naming the variable, rather than producing broken children."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from chat_operator.builders.alerts import DEFAULT_RUNBOOK_BASE_URL

RUNBOOK_BASE_URL_ENV = "CHATCLUSTER_RUNBOOK_BASE_URL"


class SettingsError(ValueError):
    """A setting's value is unusable; the message names the variable."""


@dataclass(frozen=True)
class OperatorSettings:
    runbook_base_url: str = DEFAULT_RUNBOOK_BASE_URL
    """Where every alert's `runbook_url` points: `<base>#<alert name in lower case>`, so the
    page must have one section per alert as docs/runbooks.md does. An absolute http(s) URL
    without a fragment. Default: this repository's docs/runbooks.md as published, for teams
    that keep no copy of their own. Env: CHATCLUSTER_RUNBOOK_BASE_URL (chart:
    `runbookBaseUrl`); unset or empty means the default."""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> OperatorSettings:
        base = environ.get(RUNBOOK_BASE_URL_ENV, "").strip()
        if not base:
            return cls()
        return cls(runbook_base_url=_runbook_base(base))


def _runbook_base(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(
            f"{RUNBOOK_BASE_URL_ENV}={value!r}: must be an absolute http(s) URL, e.g. "
            f"{DEFAULT_RUNBOOK_BASE_URL}"
        )
    if parts.fragment or value.endswith("#"):
        raise SettingsError(
            f"{RUNBOOK_BASE_URL_ENV}={value!r}: must not have a #fragment; each alert appends "
            "its own (#<alert name in lower case>)"
        )
    if any(c.isspace() for c in value):
        raise SettingsError(f"{RUNBOOK_BASE_URL_ENV}={value!r}: must not contain whitespace")
    return value
