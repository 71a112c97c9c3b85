"""A small error taxonomy: every failure a client can see carries a stable `code`.

The codes are API (documented in docs/protocol.md and the OpenAPI document); the HTTP layer maps
`status`, the WebSocket layer sends `{"type": "error", "code": ...}` frames.
"""

from __future__ import annotations


class ChatError(Exception):
    """Base of every client-visible error."""

    code = "internal"
    status = 500

    def __init__(self, message: str, *, code: str | None = None, **details: object) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details

    def to_dict(self) -> dict[str, object]:
        body: dict[str, object] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class InvalidRequest(ChatError):
    code = "invalid_request"
    status = 400


class Unauthenticated(ChatError):
    code = "unauthenticated"
    status = 401


class Forbidden(ChatError):
    code = "forbidden"
    status = 403


class NotFound(ChatError):
    code = "not_found"
    status = 404


class Conflict(ChatError):
    code = "conflict"
    status = 409


class PayloadTooLarge(ChatError):
    code = "payload_too_large"
    status = 413


class RateLimited(ChatError):
    code = "rate_limited"
    status = 429


class Unavailable(ChatError):
    """A dependency is down; the request may be retried."""

    code = "unavailable"
    status = 503


class UnsupportedMediaType(ChatError):
    """A request body that is not declared as JSON (`Content-Type: application/json`)."""

    code = "unsupported_media_type"
    status = 415
