"""The API's route table: one place lists every documented route. It sits above the handlers
(and below chat/api/openapi.py, which documents it); the composition root (chat/app/http.py)
mounts it with each handler's `initialize` arguments."""

from __future__ import annotations

from chat.api import accounts, conversations, health, oidc, users
from chat.api.base import JsonBase

API_HANDLERS: tuple[type[JsonBase], ...] = (
    accounts.RegisterHandler,
    accounts.LoginHandler,
    accounts.RefreshHandler,
    accounts.LogoutHandler,
    oidc.OidcInfoHandler,
    oidc.OidcLoginHandler,
    oidc.OidcCallbackHandler,
    accounts.MeHandler,
    users.UsersHandler,  # accounts.UsersHandler's `?username=` plus people search `?q=`
    accounts.UserHandler,
    accounts.DisableUserHandler,
    accounts.EnableUserHandler,
    conversations.ConversationsHandler,
    conversations.ConversationHandler,
    conversations.MembersHandler,
    conversations.MemberHandler,
    conversations.MessagesHandler,
    conversations.MessageHandler,
    conversations.ReadHandler,
    conversations.SearchHandler,
    conversations.PresenceHandler,
)

# /metrics is not here: it is served on the internal metrics port (chat/app/http.py).
OPS_HANDLERS: tuple[type[JsonBase], ...] = (
    health.HealthHandler,
    health.ReadyHandler,
    health.OpenApiHandler,
)


def tornado_pattern(route: str) -> str:
    """`/a/{x}/b` -> `/a/(?P<x>[^/]+)/b`"""
    out = []
    for part in route.split("/"):
        if part.startswith("{") and part.endswith("}"):
            out.append(f"(?P<{part[1:-1]}>[^/]+)")
        else:
            out.append(part)
    return "/".join(out)
