"""Request bodies: JSON only, bounded in memory, and always answered with a JSON error.

Handlers stream the body (Tornado's `stream_request_body`) instead of letting the server buffer
it, so the limits are ours, not the server's bare `400` and reset:
- at most `MAX_JSON_BODY` bytes are kept; a larger body is read on and discarded, then answered
  `413 payload_too_large` on a connection that stays usable (a client that sent the whole body
  first, as most do, gets to read the answer instead of a reset);
- a body declared (Content-Length) or found to be over `MAX_DRAIN_BYTES` is answered `413` at
  once and the connection is closed: draining it would only waste bandwidth. So is a declared
  oversize body sent with `Expect: 100-continue`, whose client then never sends it;
- a non-empty body must be `Content-Type: application/json` (optionally `; charset=utf-8`),
  else `415 unsupported_media_type`; JSON is UTF-8 by definition (RFC 8259).
"""

from __future__ import annotations

from chat.domain.errors import PayloadTooLarge, UnsupportedMediaType

MAX_JSON_BODY = 64 * 1024
"""Largest request body accepted (bytes)."""
MAX_DRAIN_BYTES = 64 * 1024 * 1024
"""Largest oversize body read (and discarded) so the 413 arrives on an intact connection."""


def too_large() -> PayloadTooLarge:
    return PayloadTooLarge(
        f"request body is larger than {MAX_JSON_BODY} bytes", limit=MAX_JSON_BODY
    )


def declared_length(value: str | None) -> int | None:
    """The Content-Length, when it is a plain number (Tornado rejects the others itself)."""
    if value is None or not value.strip().isascii() or not value.strip().isdigit():
        return None
    return int(value.strip())


class BoundedBody:
    """The first `MAX_JSON_BODY` bytes of a streamed body, and how many bytes came in all."""

    def __init__(self) -> None:
        self._kept = bytearray()
        self.received = 0

    def feed(self, chunk: bytes) -> bool:
        """Take a chunk; False once the body is over `MAX_DRAIN_BYTES` (stop reading)."""
        self.received += len(chunk)
        if self.received <= MAX_JSON_BODY:
            self._kept += chunk
        elif self._kept:
            self._kept = bytearray()  # over the limit: count on, keep nothing
        return self.received <= MAX_DRAIN_BYTES

    @property
    def too_large(self) -> bool:
        return self.received > MAX_JSON_BODY

    def data(self) -> bytes:
        if self.too_large:
            raise too_large()
        return bytes(self._kept)


def require_json(content_type: str | None) -> None:
    media, _, params = (content_type or "").partition(";")
    charset = ""
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    if media.strip().lower() != "application/json" or charset not in ("", "utf-8"):
        raise UnsupportedMediaType(
            "send the body as Content-Type: application/json", code="unsupported_media_type"
        )
