"""The error registry: every `code` a client can see, declared once (as Centrifuge's `errors.go`).

Each entry says what the code means, where a client meets it (`ws`, `http`), the HTTP status it
is answered with, the WebSocket close code that follows it when it ends a connection before
`ready` (None: it never closes a socket; after `ready` no error does), and whether the same
request, unchanged, may succeed later (`retriable`: back off, honour `retry_after_ms`).

Everything else reads from here: `ChatError` takes its status from the entry of its code (and
refuses an unregistered code), the HTTP layer maps a bare status to its `generic` code, the
gateway's close policy asks `close_code_for`, and the tables in docs/protocol.md are generated
from `ERRORS` (`python -m chat.ws.tables`; tests/unit/test_error_tables.py fails on drift).
Codes are API: never rename one; add a new one instead.

Pure data: no framework imports (chat.domain is below every transport).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Where = Literal["ws", "http"]
WS: tuple[Where, ...] = ("ws",)
HTTP: tuple[Where, ...] = ("http",)
BOTH: tuple[Where, ...] = ("ws", "http")


@dataclass(frozen=True, slots=True)
class ErrorCode:
    code: str
    doc: str
    """What it means, for docs/protocol.md (Markdown)."""
    where: tuple[Where, ...]
    http: int
    """The HTTP status the code is answered with."""
    close: int | None = None
    """The close code that follows it before `ready` (chat.ws.close_codes); None: never closes."""
    close_doc: str = ""
    """Extra words for the close column of the docs table."""
    retriable: bool = False
    """The same request, unchanged, may succeed later (a server-side condition, not the input)."""
    generic: bool = False
    """The code for a bare HTTP status that no specific code explains (a Tornado HTTPError)."""


# Order is the order of the docs table: WebSocket-visible codes first, then HTTP-only ones.
ERRORS: tuple[ErrorCode, ...] = (
    ErrorCode("bad_json", "frame (or HTTP body) is not a JSON object", BOTH, 400, 4400),
    ErrorCode("unknown_type", "`type` is not a client frame type", WS, 400, 4400),
    ErrorCode(
        "invalid_request",
        "malformed field, bad `ref`, first frame not `auth`, second `auth`, bad `presence` "
        "state, bad limit/query",
        BOTH,
        400,
        4400,
        generic=True,
    ),
    ErrorCode("unauthenticated", "access token missing", BOTH, 401, 4401, generic=True),
    ErrorCode(
        "token_invalid",
        "token malformed, forged, wrong audience/issuer, unknown user; refresh token "
        "invalid/expired",
        BOTH,
        401,
        4401,
    ),
    ErrorCode(
        "token_expired",
        "access token expired: refresh it over HTTP, then reconnect",
        BOTH,
        401,
        4401,
    ),
    ErrorCode("session_revoked", "the token's session was logged out or revoked", BOTH, 401, 4401),
    ErrorCode("user_disabled", "the account is disabled", BOTH, 403, 4403),
    ErrorCode(
        "too_many_connections", "more than `max_connections_per_user` sockets", WS, 429, 4429
    ),
    ErrorCode(
        "not_member",
        "not a member of the conversation (also for unknown conversation ids); on `resume`, "
        "`details.conversation_id` names it",
        BOTH,
        403,
    ),
    ErrorCode(
        "message_not_found",
        "edit/delete target does not exist or is deleted (and the `client_id` is new)",
        BOTH,
        404,
    ),
    ErrorCode("not_author", "edit/delete of someone else's message", BOTH, 403),
    ErrorCode("invalid_client_id", "`client_id` missing or malformed", BOTH, 400),
    ErrorCode("body_empty", "body empty after trimming", BOTH, 400),
    ErrorCode("body_too_long", "body over `max_body_chars`; `details.limit`", BOTH, 413),
    ErrorCode(
        "rate_limited",
        "send/edit/delete over the token bucket, or too many login/registration attempts "
        "(`details.scope`: `ip` or `username`); `details.retry_after_ms` (HTTP: 429 and "
        "`Retry-After`)",
        BOTH,
        429,
        retriable=True,
        generic=True,
    ),
    ErrorCode(
        "not_recoverable",
        "a gap in a conversation cannot be replayed: reload it over HTTP",
        WS,
        410,  # never answered over HTTP; were it, the missed events are gone
    ),
    ErrorCode(
        "dependency_unavailable",
        "a store (Redis, PostgreSQL, MongoDB) is unreachable; retry later; "
        "`details.dependency`; HTTP 503",
        BOTH,
        503,
        1013,
        "reconnect later, with a longer backoff",
        retriable=True,
    ),
    ErrorCode(
        "internal",
        "unexpected server error",
        BOTH,
        500,
        1011,
        "before `ready`; after it the socket stays open",
        retriable=True,
        generic=True,
    ),
    ErrorCode("invalid_credentials", "wrong username or password", HTTP, 401),
    ErrorCode(
        "refresh_reused",
        "a rotated refresh token was presented again: the session is revoked and its sockets "
        "close with 4409",
        HTTP,
        401,
    ),
    ErrorCode("invalid_username", "registration input rules: the username", HTTP, 400),
    ErrorCode("invalid_password", "registration input rules: the password", HTTP, 400),
    ErrorCode("username_taken", "registration conflict", HTTP, 409),
    ErrorCode("admin_only", "admin endpoint called by a non-admin", HTTP, 403),
    ErrorCode("conflict", "an admin tried to disable themselves", HTTP, 409, generic=True),
    ErrorCode("user_not_found", "no such (active) user", HTTP, 404),
    ErrorCode("conversation_not_found", "no such conversation", HTTP, 404),
    ErrorCode("member_not_found", "removing someone who is not a member", HTTP, 404),
    ErrorCode("already_member", "adding a member who already is one", HTTP, 409),
    ErrorCode("group_full", "adding a member beyond `max_group_members`", HTTP, 409),
    ErrorCode("direct_fixed", "membership of a direct conversation cannot change", HTTP, 400),
    ErrorCode("not_owner", "only the group owner can add/remove others", HTTP, 403),
    ErrorCode(
        "unsupported_media_type",
        "a request body not sent as `Content-Type: application/json` (415)",
        HTTP,
        415,
        generic=True,
    ),
    ErrorCode(
        "identity_taken",
        "single sign-on: the provider identity is already linked to another account",
        HTTP,
        409,
    ),
    ErrorCode("oidc_disabled", "single sign-on is not configured (404)", HTTP, 404),
    ErrorCode(
        "oidc_state",
        "single sign-on: the login state is missing, expired or does not match; start again",
        HTTP,
        401,
    ),
    ErrorCode("oidc_denied", "single sign-on: the provider did not sign the user in", HTTP, 401),
    ErrorCode(
        "oidc_refused",
        "single sign-on: the provider refused the code exchange, or its ID token is invalid",
        HTTP,
        401,
    ),
    ErrorCode(
        "idp_unavailable",
        "single sign-on: the identity provider is unreachable; retry later (503)",
        HTTP,
        503,
        retriable=True,
    ),
    ErrorCode("forbidden", "generic HTTP status 403", HTTP, 403, generic=True),
    ErrorCode("not_found", "generic HTTP status 404 (e.g. no such route)", HTTP, 404, generic=True),
    ErrorCode("method_not_allowed", "generic HTTP status 405", HTTP, 405, generic=True),
    ErrorCode("payload_too_large", "generic HTTP status 413", HTTP, 413, generic=True),
    ErrorCode(
        "unavailable",
        "generic HTTP status 503: a dependency is down; retry later",
        HTTP,
        503,
        retriable=True,
        generic=True,
    ),
)

BY_CODE: dict[str, ErrorCode] = {e.code: e for e in ERRORS}
_GENERIC: dict[int, str] = {e.http: e.code for e in ERRORS if e.generic}


class UnregisteredErrorCode(LookupError):
    """A code that is not in `ERRORS`: a programming error, never a client's."""


def lookup(code: str) -> ErrorCode:
    try:
        return BY_CODE[code]
    except KeyError:
        raise UnregisteredErrorCode(
            f"error code {code!r} is not in chat.domain.error_codes"
        ) from None


def http_status(code: str) -> int:
    return lookup(code).http


def close_code_for(code: str) -> int | None:
    """The close code that follows `code` when it ends a connection before `ready`; None when
    the code never closes a socket (and an unregistered code is None, not an exception: the
    close policy runs on the error path and must not raise)."""
    entry = BY_CODE.get(code)
    return None if entry is None else entry.close


def is_retriable(code: str) -> bool:
    """False for an unregistered code (see `close_code_for`)."""
    entry = BY_CODE.get(code)
    return entry is not None and entry.retriable


def generic_code(status: int) -> str:
    """The code for a bare HTTP status (405 from Tornado, a route's 404): `internal` if none."""
    return _GENERIC.get(status, "internal")
