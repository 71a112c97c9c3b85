"""Identifiers: random, URL-safe, sortable enough for logs, opaque to clients."""

from __future__ import annotations

import secrets


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"
