"""Close policy: which error or situation closes a socket, and with which code.

The codes are API (`close_codes.py`, docs/protocol.md). The rule the client relies on: an error
before `ready` is always followed by a close, whose code says whether to come back; after
`ready`, a refused frame gets an `error` frame and the socket stays open. Every situation
that closes a socket, its code, and where it is decided:

- an error answering the auth frame: `close_for_auth_error` (4400, 4401, 4403, 4429, 1013);
- no auth frame within `auth_timeout_s`: 4408 (`Session._auth_deadline`);
- a binary frame: 1003; an unexpected failure before `ready`: 1011 (`Session.receive`);
- the outbound budget exceeded: 4008 (`Session.send_frame`);
- drain (SIGTERM) or `max_connection_age_s`: 1012 (`Gateway.drain`, `liveness.py`);
- logout, token reuse, a disabled user (a control frame on the bus): `close_for_control`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chat.domain.errors import ChatError
from chat.ws import close_codes
from chat.ws.close_codes import CloseCode


def close_for_auth_error(exc: ChatError) -> CloseCode:
    """The close code that follows the `error` frame answering a failed auth frame: the one
    the error registry names for the code (chat/domain/error_codes.py), else 1013 for a
    retriable (server-side) error and 4401 for any other."""
    return close_codes.for_error(exc.code)


def close_for_control(frame: Mapping[str, Any], session_id: str) -> CloseCode | None:
    """A `close` control frame on the user's channel (published by the accounts service): it
    closes every socket of the user, or only those of one session; the code travels with it
    (4409 when absent or unknown)."""
    sid = frame.get("session_id")
    if sid is not None and sid != session_id:
        return None
    return close_codes.BY_CODE.get(int(frame.get("code", 4409)), close_codes.SESSION_REVOKED)
