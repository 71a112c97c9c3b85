"""People search: `GET /api/v1/users?q=` for autocomplete, next to the exact `?username=`
lookup it extends (same route, so one handler serves both)."""

from __future__ import annotations

from typing import Any

from chat.api import accounts
from chat.api.openapi_parts import op, ref
from chat.domain.accounts import USER_SEARCH_DEFAULT_LIMIT, USER_SEARCH_MAX_LIMIT
from chat.domain.frames import user_dict


def _docs() -> dict[str, Any]:
    get = op(
        "Find people. `?q=` (1-64 characters): active users whose username, display name or a"
        " word of the display name starts with `q`, any case, usernames first; at most"
        f" `limit` (1-{USER_SEARCH_MAX_LIMIT}, default {USER_SEARCH_DEFAULT_LIMIT}), as"
        " `{users: [User]}`. `?username=`: exactly that user, as a User (404 when none).",
        None,
        "User",
        errors=(400, 401, 404),
        query=("q", "limit", "username"),
    )
    found = {
        "type": "object",
        "required": ["users"],
        "properties": {"users": {"type": "array", "items": ref("User")}},
    }
    get["responses"]["200"]["content"]["application/json"]["schema"] = {
        "oneOf": [found, ref("User")]
    }
    return {"get": get}


class UsersHandler(accounts.UsersHandler):
    docs = _docs()

    async def get(self) -> None:
        q = self.get_query_argument("q", None)
        if q is None:
            await super().get()
            return
        await self.principal()
        found = await self.accounts.search_users(q, self.query_int("limit"))
        self.send_json({"users": [user_dict(u) for u in found]})
