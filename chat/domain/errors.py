"""A small error taxonomy: every failure a client can see carries a stable `code`.

The codes are API, declared once in chat.domain.error_codes with their HTTP status, close code
and docs; a `ChatError` takes its `status` from its code's entry there, so a raise site that
names a specific code (`NotFound(..., code="user_not_found")`) is answered with that code's
status, and a code that is not registered is refused where it is raised
(`UnregisteredErrorCode`; tests/unit/test_error_registry.py also scans chat/ for literals).
The HTTP layer answers `status`, the WebSocket layer sends `{"type": "error", "code": ...}`.
"""

from __future__ import annotations

from chat.domain.error_codes import lookup


class ChatError(Exception):
    """Base of every client-visible error."""

    code = "internal"
    status: int = lookup(code).http

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.status = lookup(cls.code).http  # an unregistered class code fails at import

    def __init__(self, message: str, *, code: str | None = None, **details: object) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.status = lookup(self.code).http
        self.details = details

    def to_dict(self) -> dict[str, object]:
        body: dict[str, object] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class InvalidRequest(ChatError):
    code = "invalid_request"


class Unauthenticated(ChatError):
    code = "unauthenticated"


class Forbidden(ChatError):
    code = "forbidden"


class NotFound(ChatError):
    code = "not_found"


class Conflict(ChatError):
    code = "conflict"


class PayloadTooLarge(ChatError):
    code = "payload_too_large"


class RateLimited(ChatError):
    code = "rate_limited"


class Unavailable(ChatError):
    """A dependency is down; the request may be retried."""

    code = "unavailable"


class UnsupportedMediaType(ChatError):
    """A request body that is not declared as JSON (`Content-Type: application/json`)."""

    code = "unsupported_media_type"
