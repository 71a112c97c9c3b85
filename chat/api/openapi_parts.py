"""Pieces of the OpenAPI 3.1 document: each handler declares its operations with `op`, next to
the code, and `chat.api.openapi` assembles them. A test checks routes and document agree."""

from __future__ import annotations

from typing import Any

from chat.domain.error_codes import ERRORS

_REASONS = {
    200: "OK",
    201: "Created",
    204: "No content",
    400: "Invalid request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    413: "Too large",
    415: "Body is not JSON",
    429: "Rate limited",
    503: "Unavailable",
}


def op(
    summary: str,
    request: str | None,
    response: str | None,
    status: int = 200,
    *,
    auth: bool = True,
    errors: tuple[int, ...] = (),
    query: tuple[str, ...] = (),
    stores: bool = True,
) -> dict[str, Any]:
    """One operation. `stores`: it reads or writes a store, so it answers `503
    dependency_unavailable` while one it needs is down."""
    operation: dict[str, Any] = {"summary": summary, "responses": {}}
    if stores:
        errors = tuple(sorted({*errors, 503}))
    if request:
        operation["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{request}"}}
            },
        }
        # Every body is JSON of at most 64 KiB (chat.api.body): 413 and 415 always apply.
        errors = tuple(sorted({*errors, 413, 415}))
    ok: dict[str, Any] = {"description": _REASONS.get(status, "OK")}
    if response:
        ok["content"] = {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{response}"}}
        }
    operation["responses"][str(status)] = ok
    for code in errors:
        name = "RateLimited" if code == 429 else "Error"
        operation["responses"][str(code)] = {"$ref": f"#/components/responses/{name}"}
    if not auth:
        operation["security"] = []
    if query:
        operation["parameters"] = [
            {"name": q, "in": "query", "required": False, "schema": param_schema(q)} for q in query
        ]
    return operation


# Parameters that are numbers: ASCII digits only (no sign, spaces, `_` or other scripts'
# digits), at most 2^63-1; anything else is 400 `invalid_request`.
NUMERIC_PARAMS = frozenset({"seq", "before", "after", "limit"})
_NUMBER = {"type": "string", "pattern": "^[0-9]{1,19}$", "maxLength": 19}


def param_schema(name: str) -> dict[str, Any]:
    if name in NUMERIC_PARAMS:
        return {**_NUMBER, "description": "a decimal integer from 0 to 9223372036854775807"}
    return {"type": "string"}


def _obj(required: list[str], **props: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": props}


_STR = {"type": "string"}
_INT = {"type": "integer"}
_BOOL = {"type": "boolean"}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


SCHEMAS: dict[str, Any] = {
    "Error": _obj(
        ["error"],
        error=_obj(
            ["code", "message"],
            # Every code the server can answer with: chat/domain/error_codes.py, the one registry.
            code={"type": "string", "enum": sorted(e.code for e in ERRORS)},
            message=_STR,
            details={"type": "object"},
        ),
    ),
    "Register": _obj(["username", "password"], username=_STR, password=_STR, display_name=_STR),
    "Login": _obj(["username", "password"], username=_STR, password=_STR),
    "Logout": _obj([], all=_BOOL),
    "Refresh": _obj(["refresh_token"], refresh_token=_STR),
    "User": _obj(
        ["id", "username"],
        id=_STR,
        username=_STR,
        display_name=_STR,
        created_at=_INT,
        disabled=_BOOL,
        is_admin=_BOOL,
    ),
    "Tokens": _obj(
        ["user", "access_token", "refresh_token", "expires_in"],
        user=ref("User"),
        access_token=_STR,
        refresh_token=_STR,
        token_type=_STR,
        expires_in=_INT,
    ),
    "Member": _obj(
        ["user_id", "role"], user_id=_STR, role={"enum": ["owner", "member"]}, read_seq=_INT
    ),
    "Conversation": _obj(
        ["id", "kind", "members"],
        id=_STR,
        kind={"enum": ["direct", "group"]},
        title=_STR,
        created_by=_STR,
        created_at=_INT,
        members={"type": "array", "items": ref("Member")},
        last_seq=_INT,
        unread=_INT,
        last_message={"oneOf": [ref("Message"), {"type": "null"}]},
    ),
    "ConversationList": _obj(
        ["conversations"], conversations={"type": "array", "items": ref("Conversation")}
    ),
    "NewConversation": _obj(
        ["kind"],
        kind={"enum": ["direct", "group"]},
        user_id=_STR,
        title=_STR,
        member_ids={"type": "array", "items": _STR},
    ),
    "AddMember": _obj(["user_id"], user_id=_STR),
    "Message": _obj(
        ["conversation_id", "seq", "sender_id", "body", "ts"],
        conversation_id=_STR,
        seq=_INT,
        sender_id=_STR,
        client_id=_STR,
        body=_STR,
        ts=_INT,
        edited_ts={"type": ["integer", "null"]},
        deleted=_BOOL,
    ),
    "MessagePage": _obj(
        ["messages"],
        messages={"type": "array", "items": ref("Message")},
        archive_unavailable={
            "type": "boolean",
            "description": "History only: true when the message archive could not be reached."
            " The page then comes from the hot log (every event not yet archived plus the most"
            " recent archived ones); older pages are unavailable until the archive is back: a"
            " `before` page below the log's start is empty, an `after` page starting below it"
            " is empty.",
        },
    ),
    "SendMessage": _obj(["client_id", "body"], client_id=_STR, body=_STR),
    "EditMessage": _obj(["client_id", "body"], client_id=_STR, body=_STR),
    "Event": _obj(
        ["type", "conversation_id", "seq", "kind"],
        type={"const": "message"},
        conversation_id=_STR,
        seq=_INT,
        kind={"enum": ["message", "edit", "delete"]},
        sender_id=_STR,
        client_id=_STR,
        body=_STR,
        target_seq={"type": ["integer", "null"]},
        ts=_INT,
    ),
    "Appended": _obj(["event", "duplicate"], event=ref("Event"), duplicate=_BOOL),
    "ReadPointer": _obj(["seq"], seq=_INT, conversation_id=_STR),
    "Presence": _obj(
        ["user_id", "state"],
        user_id=_STR,
        state={"enum": ["online", "idle", "offline"]},
        last_seen={"type": ["integer", "null"]},
    ),
    "PresenceList": _obj(["presence"], presence={"type": "array", "items": ref("Presence")}),
    "OidcInfo": _obj(["enabled"], enabled=_BOOL, display_name=_STR),
    "Health": _obj(["status"], status=_STR, checks={"type": "object"}),
}
