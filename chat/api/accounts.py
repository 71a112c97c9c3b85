"""Accounts: register, login, refresh, logout, me, users, admin."""

from __future__ import annotations

from chat.api import views
from chat.api.base import JsonHandler
from chat.api.openapi_parts import op
from chat.domain.errors import InvalidRequest
from chat.domain.frames import user_dict


class RegisterHandler(JsonHandler):
    route = "/api/v1/auth/register"
    docs = {
        "post": op(
            "Create an account and a session",
            "Register",
            "Tokens",
            201,
            auth=False,
            errors=(400, 409, 429),
        )
    }

    async def post(self) -> None:
        body = self.json_body()
        pair = await self.accounts.register(
            body.get("username"),
            body.get("password"),
            body.get("display_name"),
            client_ip=self.request.remote_ip or "",
        )
        self.send_json(views.tokens(pair), 201)


class LoginHandler(JsonHandler):
    route = "/api/v1/auth/login"
    docs = {
        "post": op(
            "Log in with username and password",
            "Login",
            "Tokens",
            auth=False,
            errors=(400, 401, 403, 429),
        )
    }

    async def post(self) -> None:
        body = self.json_body()
        pair = await self.accounts.login(
            body.get("username"), body.get("password"), client_ip=self.request.remote_ip or ""
        )
        self.send_json(views.tokens(pair))


class RefreshHandler(JsonHandler):
    route = "/api/v1/auth/refresh"
    docs = {
        "post": op(
            "Rotate a refresh token; reusing a rotated one revokes the session",
            "Refresh",
            "Tokens",
            auth=False,
            errors=(400, 401, 403),
        )
    }

    async def post(self) -> None:
        body = self.json_body()
        pair = await self.accounts.refresh(body.get("refresh_token"))
        self.send_json(views.tokens(pair))


class LogoutHandler(JsonHandler):
    route = "/api/v1/auth/logout"
    docs = {
        "post": op(
            "End this session (or all with `all: true`); closes its sockets",
            "Logout",
            None,
            204,
            errors=(400, 401),
        )
    }

    async def post(self) -> None:
        who = await self.principal()
        everywhere = self.json_body().get("all", False)
        if not isinstance(everywhere, bool):
            raise InvalidRequest("all must be a boolean")
        await self.accounts.logout(who, everywhere)
        self.set_status(204)
        self.finish()


class MeHandler(JsonHandler):
    route = "/api/v1/me"
    docs = {"get": op("The calling user", None, "User", errors=(401,))}

    async def get(self) -> None:
        who = await self.principal()
        self.send_json(user_dict(who.user))


class UsersHandler(JsonHandler):
    route = "/api/v1/users"
    docs = {
        "get": op(
            "Find a user by exact username (`?username=`)",
            None,
            "User",
            errors=(400, 401, 404),
            query=("username",),
        )
    }

    async def get(self) -> None:
        await self.principal()
        username = self.get_query_argument("username", None)
        if not username:
            raise InvalidRequest("give ?username=")
        self.send_json(user_dict(await self.accounts.find_user(username)))


class UserHandler(JsonHandler):
    route = "/api/v1/users/{user_id}"
    docs = {"get": op("A user by id", None, "User", errors=(400, 401, 404))}

    async def get(self, user_id: str) -> None:
        await self.principal()
        self.send_json(user_dict(await self.accounts.get_user(user_id)))


class DisableUserHandler(JsonHandler):
    route = "/api/v1/admin/users/{user_id}/disable"
    docs = {
        "post": op(
            "Admin: disable a user; their sessions end and sockets close",
            None,
            "User",
            errors=(401, 403, 404, 409),
        )
    }

    async def post(self, user_id: str) -> None:
        who = await self.principal()
        self.send_json(user_dict(await self.accounts.set_disabled(who, user_id, True)))


class EnableUserHandler(JsonHandler):
    route = "/api/v1/admin/users/{user_id}/enable"
    docs = {"post": op("Admin: enable a disabled user", None, "User", errors=(401, 403, 404))}

    async def post(self, user_id: str) -> None:
        who = await self.principal()
        self.send_json(user_dict(await self.accounts.set_disabled(who, user_id, False)))
