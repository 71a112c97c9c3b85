"""Input rules shared by the HTTP API and the WebSocket gateway."""

from __future__ import annotations

import re

from chat.domain.errors import InvalidRequest, PayloadTooLarge
from chat.domain.limits import Limits

# Always `fullmatch`: with `match`/`search`, `$` also matches before a final "\n", so "abc\n"
# would pass. ASCII-only classes, checked before lower-casing: `str.lower` maps some non-ASCII
# letters to ASCII ones (the Kelvin sign to "k").
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{2,31}", re.ASCII)
CLIENT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}", re.ASCII)


def username(value: object) -> str:
    if not isinstance(value, str) or not USERNAME.fullmatch(value):
        raise InvalidRequest(
            "username must be 3-32 characters: letters, digits, '_', '.', '-'",
            code="invalid_username",
        )
    return value.lower()


def password(value: object) -> str:
    if not isinstance(value, str) or not 8 <= len(value) <= 256:
        raise InvalidRequest("password must be 8-256 characters", code="invalid_password")
    return value


def display_name(value: object, fallback: str) -> str:
    if value is None:
        return fallback
    if not isinstance(value, str) or not 1 <= len(value.strip()) <= 64:
        raise InvalidRequest("display_name must be 1-64 characters", code="invalid_request")
    return value.strip()


def client_id(value: object) -> str:
    if not isinstance(value, str) or not CLIENT_ID.fullmatch(value):
        raise InvalidRequest(
            "client_id must be 1-64 characters of A-Z a-z 0-9 _ . : -", code="invalid_client_id"
        )
    return value


def body(value: object, limits: Limits) -> str:
    """Bodies are stored verbatim (never interpreted); only trailing white space is trimmed."""
    if not isinstance(value, str):
        raise InvalidRequest("body must be a string", code="invalid_request")
    text = value.rstrip()
    if not text.strip():
        raise InvalidRequest("message body is empty", code="body_empty")
    if len(text) > limits.max_body_chars:
        raise PayloadTooLarge(
            f"message body is longer than {limits.max_body_chars} characters",
            code="body_too_long",
            limit=limits.max_body_chars,
        )
    return text


MAX_SEQ = 2**63 - 1
"""Largest seq or cursor accepted: the stores keep seqs as signed 64-bit integers (JSON parsers
here accept up to 2**64 - 1, which a database driver would refuse with an overflow)."""


def seq(value: object, name: str = "seq", minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= MAX_SEQ:
        raise InvalidRequest(
            f"{name} must be an integer from {minimum} to {MAX_SEQ}", code="invalid_request"
        )
    return value


def identifier(value: object, name: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 64:
        raise InvalidRequest(f"{name} must be a string id", code="invalid_request")
    return value


def title(value: object) -> str:
    if not isinstance(value, str) or not 1 <= len(value.strip()) <= 100:
        raise InvalidRequest("title must be 1-100 characters", code="invalid_request")
    return value.strip()
