"""WebSocket close codes are API (docs/protocol.md).

Reconnectable codes mean "come back (with backoff and jitter) and resume"; terminal codes mean
"do not reconnect until something changes" (new credentials, a user action). Application codes
live in 4000-4999 and echo HTTP statuses where one fits, so they are easy to remember.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CloseCode:
    code: int
    reason: str
    reconnect: bool


NORMAL = CloseCode(1000, "normal closure", False)
GOING_AWAY = CloseCode(1001, "going away", True)
PROTOCOL_ERROR = CloseCode(1002, "RFC 6455 protocol violation", False)
BINARY = CloseCode(1003, "binary frames are not accepted; send JSON text frames", False)
INVALID_UTF8 = CloseCode(1007, "text frame is not valid UTF-8", False)
TOO_BIG = CloseCode(1009, "frame too large", True)
INTERNAL = CloseCode(1011, "internal error", True)
RESTARTING = CloseCode(1012, "server restarting; reconnect to another node", True)
TRY_LATER = CloseCode(1013, "try again later", True)
SLOW_CONSUMER = CloseCode(4008, "slow consumer: outbound queue full", True)
PROTOCOL = CloseCode(4400, "protocol violation before authentication", False)
UNAUTHENTICATED = CloseCode(4401, "authentication failed", False)
DISABLED = CloseCode(4403, "user disabled", False)
AUTH_TIMEOUT = CloseCode(4408, "no auth frame in time", False)
SESSION_REVOKED = CloseCode(4409, "session ended (logout or token reuse)", False)
TOO_MANY_CONNECTIONS = CloseCode(4429, "too many connections for this user", False)

TABLE: tuple[CloseCode, ...] = (
    NORMAL,
    GOING_AWAY,
    PROTOCOL_ERROR,
    BINARY,
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


def is_reconnectable(code: int) -> bool:
    """Unknown codes, and 1006 (no close frame: the network broke), are reconnectable."""
    known = BY_CODE.get(code)
    return True if known is None else known.reconnect
