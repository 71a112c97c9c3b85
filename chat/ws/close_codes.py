"""WebSocket close codes are API (docs/protocol.md).

Reconnectable codes mean "come back (with backoff and jitter) and resume"; terminal codes mean
"do not reconnect until something changes" (new credentials, a user action). Application codes
live in 4000-4999 and echo HTTP statuses where one fits, so they are easy to remember.

This table is the one place for close codes: the close that follows an error before `ready` is
named by the error's entry in chat.domain.error_codes (`for_error`), and the docs table and the
web client's terminal set (chat/web/js/close_codes.js) are generated from `TABLE`
(`python -m chat.ws.tables`); tests/unit/test_error_registry.py checks that every close code
the registry names is here, with a reconnect flag that matches the error's `retriable`.
"""

from __future__ import annotations

from dataclasses import dataclass

from chat.domain.error_codes import close_code_for, is_retriable


@dataclass(frozen=True, slots=True)
class CloseCode:
    code: int
    reason: str
    """Sent in the close frame (at most 123 bytes of UTF-8)."""
    reconnect: bool
    doc: str = ""
    """The docs table's reason, when it says more than `reason` (Markdown)."""
    action: str = "reconnect with backoff + jitter, resume"
    """What a client should do, for the docs table."""


NORMAL = CloseCode(
    1000, "normal closure", False, action="you or the server ended the session deliberately"
)
GOING_AWAY = CloseCode(1001, "going away", True)
PROTOCOL_ERROR = CloseCode(
    1002,
    "RFC 6455 protocol violation",
    False,
    "RFC 6455 protocol violation (see below)",
    "fix the client's WebSocket implementation",
)
BINARY = CloseCode(
    1003,
    "binary frames are not accepted; send JSON text frames",
    False,
    "binary frame (the protocol is JSON text frames), before or after auth",
    "send text frames",
)
ABNORMAL = CloseCode(1006, "abnormal closure", True, "(abnormal, no close frame)")
"""Never sent (RFC 6455 §7.4.1): what a client sees when the network broke."""
INVALID_UTF8 = CloseCode(
    1007,
    "text frame is not valid UTF-8",
    False,
    "a text frame that is not valid UTF-8",
    "fix the client's encoding",
)
TOO_BIG = CloseCode(
    1009,
    "frame too large",
    True,
    "frame too large (over `max_frame_bytes`)",
    "fix the frame (nothing of it was processed), reconnect, resume",
)
INTERNAL = CloseCode(1011, "internal error", True)
RESTARTING = CloseCode(
    1012,
    "server restarting; reconnect to another node",
    True,
    "server restarting (drain on SIGTERM), or the socket reached its maximum age "
    "(`max_connection_age_s`, so clients spread back over all gateways)",
    "reconnect **with random jitter** (another node may take it), resume",
)
TRY_LATER = CloseCode(1013, "try again later", True, action="reconnect with longer backoff, resume")
SLOW_CONSUMER = CloseCode(
    4008,
    "slow consumer: outbound queue full",
    True,
    "slow consumer: outbound queue full (`outbound_queue_frames` or `outbound_queue_bytes`)",
    "reconnect, resume (read faster)",
)
PROTOCOL = CloseCode(
    4400,
    "protocol violation before authentication",
    False,
    action="fix the client (first frame must be a valid `auth`)",
)
UNAUTHENTICATED = CloseCode(
    4401,
    "authentication failed",
    False,
    action="refresh the access token over HTTP (or log in) before reconnecting",
)
DISABLED = CloseCode(4403, "user disabled", False, action="stop; show the user")
AUTH_TIMEOUT = CloseCode(
    4408, "no auth frame in time", False, action="send `auth` immediately after opening"
)
SESSION_REVOKED = CloseCode(
    4409,
    "session ended (logout or token reuse)",
    False,
    "session ended (logout, or refresh-token reuse)",
    "log in again",
)
TOO_MANY_CONNECTIONS = CloseCode(
    4429,
    "too many connections for this user",
    False,
    action="close other connections first",
)

TABLE: tuple[CloseCode, ...] = (
    NORMAL,
    GOING_AWAY,
    PROTOCOL_ERROR,
    BINARY,
    ABNORMAL,
    INVALID_UTF8,
    TOO_BIG,
    INTERNAL,
    RESTARTING,
    TRY_LATER,
    SLOW_CONSUMER,
    PROTOCOL,
    UNAUTHENTICATED,
    DISABLED,
    AUTH_TIMEOUT,
    SESSION_REVOKED,
    TOO_MANY_CONNECTIONS,
)
BY_CODE = {c.code: c for c in TABLE}
TERMINAL: tuple[int, ...] = tuple(c.code for c in TABLE if not c.reconnect)


def is_reconnectable(code: int) -> bool:
    """Unknown codes, and 1006 (no close frame: the network broke), are reconnectable."""
    known = BY_CODE.get(code)
    return True if known is None else known.reconnect


def for_error(code: str) -> CloseCode:
    """The close that follows the error `code` when it ends a connection before `ready`.

    The registry names it (chat.domain.error_codes). A code that names none is not expected
    before `ready`; should one come, a retriable one (a server-side condition) says "come back
    later" (1013), any other fails authentication (4401, terminal), so a client that cannot
    authenticate does not reconnect in a loop."""
    close = close_code_for(code)
    if close is not None:
        return BY_CODE[close]
    return TRY_LATER if is_retriable(code) else UNAUTHENTICATED
