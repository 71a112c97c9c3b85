"""Parsing client frames. Every frame is a JSON object with a `type`; an optional `ref` (a
string or number chosen by the client) comes back on the `ack` or `error` it causes."""

from __future__ import annotations

from typing import Any

import orjson

from chat.domain.errors import InvalidRequest
from chat.domain.frames import encode

CLIENT_TYPES = frozenset(
    {"auth", "send", "edit", "delete", "resume", "typing", "presence", "read", "ping"}
)


def parse(raw: str | bytes) -> dict[str, Any]:
    """The frame as a dict with a known `type`; errors carry the frame's `ref` when it had one."""
    try:
        frame = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest("frame is not valid JSON", code="bad_json") from exc
    if not isinstance(frame, dict):
        raise InvalidRequest("frame must be a JSON object", code="bad_json")
    ref = frame.get("ref")
    if ref is not None and (
        isinstance(ref, bool) or not isinstance(ref, str | int) or len(str(ref)) > 64
    ):
        raise InvalidRequest("ref must be a short string or integer", code="invalid_request")
    kind = frame.get("type")
    # isinstance first: a list or object is unhashable, and `in` a frozenset would raise.
    if not isinstance(kind, str) or kind not in CLIENT_TYPES:
        shown = repr(kind) if len(repr(kind)) <= 40 else repr(kind)[:40] + "..."
        raise InvalidRequest(f"unknown frame type {shown}", code="unknown_type", ref=ref)
    return frame


def error_frame(code: str, message: str, ref: object = None, **details: object) -> bytes:
    frame: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if ref is not None:
        frame["ref"] = ref
    if details:
        frame["details"] = details
    return encode(frame)


def ack_frame(ref: object, **fields: Any) -> bytes:
    return encode({"type": "ack", "ref": ref, **fields})


def not_recoverable_frame(conversation_id: str) -> bytes:
    """The events a client missed are no longer in the log: it must reload the conversation."""
    return encode(
        {
            "type": "error",
            "code": "not_recoverable",
            "conversation_id": conversation_id,
            "message": "missed events cannot be replayed; reload this conversation",
        }
    )
