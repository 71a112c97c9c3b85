"""Log output: human-readable text by default, one JSON object per line with
`CHAT_LOG_FORMAT=json` (for a log pipeline). Either way each record carries the context it was
logged in, bound with `bind()`: the HTTP request id (the client's `X-Request-ID`, or a fresh
one), the WebSocket connection id, the authenticated user id and the frame's conversation id.

Context lives in contextvars: Tornado runs a request, and a WebSocket's frames one after
another, in their connection's task (each frame binds its user and conversation, and the
conversation is unbound after it: chat/ws/rfc6455.py), and tasks spawned from either inherit a
copy, so a value never leaks to another client.
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime

import orjson

CONTEXT_FIELDS = ("request_id", "connection_id", "user_id", "conversation_id")
_vars: dict[str, ContextVar[str | None]] = {
    name: ContextVar(name, default=None) for name in CONTEXT_FIELDS
}

REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
"""What a client's X-Request-ID may be; anything else (too long, spaces, control characters that
could forge log lines) is replaced by a fresh id."""


def request_id_from(header: str | None) -> str:
    if header and REQUEST_ID_PATTERN.match(header):
        return header
    return uuid.uuid4().hex


def bind(**values: str | None) -> None:
    """Set context fields for the rest of this task (and the tasks it spawns)."""
    for name, value in values.items():
        _vars[name].set(value)


def context() -> dict[str, str]:
    return {name: v for name, var in _vars.items() if (v := var.get()) is not None}


class ContextFilter(logging.Filter):
    """Copies the bound context onto each record (as attributes), for either formatter."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in context().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(level: str, fmt: str) -> None:
    """The process's one stderr handler (replacing any), in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
