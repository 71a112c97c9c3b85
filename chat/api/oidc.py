"""Sign in with an OpenID Provider (authorization code + PKCE).

The browser goes to `/login`, which redirects to the provider with a fresh state, nonce and
PKCE verifier kept in a signed, HttpOnly cookie scoped to these routes. The provider sends the
browser back to `/callback`; after the code exchange and ID-token checks the browser lands on
`/#access_token=...&refresh_token=...` (a fragment never reaches a server log), or on
`/#login_error=<code>`.
"""

from __future__ import annotations

from urllib.parse import urlencode

import orjson

from chat.api import views
from chat.api.base import JsonBase
from chat.api.openapi_parts import op
from chat.domain.accounts import AccountService
from chat.domain.errors import ChatError, NotFound
from chat.metrics import Metrics
from chat.oidc.client import OidcClient, PendingLogin

COOKIE = "chat_oidc"
COOKIE_PATH = "/api/v1/auth/oidc"
PENDING_MAX_AGE_S = 600


class OidcApi(JsonBase):
    """Sign-in with an OpenID Provider: `oidc` is None when none is configured;
    `secure_cookies` when the public origin is https (the login cookie is then `Secure`)."""

    oidc: OidcClient | None

    def initialize(
        self,
        *,
        metrics: Metrics,
        accounts: AccountService,
        oidc: OidcClient | None,
        display_name: str,
        secure_cookies: bool,
    ) -> None:
        self.setup(metrics, accounts)
        self.oidc = oidc
        self.display_name = display_name
        self.secure_cookies = secure_cookies


class OidcInfoHandler(OidcApi):
    route = "/api/v1/auth/oidc"
    docs = {
        "get": op(
            "Whether sign-in with an OpenID Provider is offered, and its label",
            None,
            "OidcInfo",
            auth=False,
            stores=False,
        )
    }

    def get(self) -> None:
        self.send_json({"enabled": self.oidc is not None, "display_name": self.display_name})


class _OidcHandler(OidcApi):
    def client(self) -> OidcClient:
        if self.oidc is None:
            raise NotFound("single sign-on is not configured", code="oidc_disabled")
        return self.oidc


class OidcLoginHandler(_OidcHandler):
    route = "/api/v1/auth/oidc/login"
    docs = {
        "get": {
            **op(
                "Start signing in: redirects to the OpenID Provider",
                None,
                None,
                302,
                auth=False,
                errors=(404, 503),
            )
        }
    }

    async def get(self) -> None:
        url, pending = await self.client().start()
        self.set_signed_cookie(
            COOKIE,
            orjson.dumps([pending.state, pending.nonce, pending.code_verifier]),
            expires_days=None,
            max_age=PENDING_MAX_AGE_S,
            path=COOKIE_PATH,
            httponly=True,
            samesite="Lax",
            secure=self.secure_cookies,
        )
        self.redirect(url)


class OidcCallbackHandler(_OidcHandler):
    route = "/api/v1/auth/oidc/callback"
    docs = {
        "get": op(
            "Where the OpenID Provider sends the browser back; redirects to the web "
            "client with tokens (or `login_error`) in the URL fragment",
            None,
            None,
            302,
            auth=False,
            errors=(404,),
            query=("code", "state", "error"),
        )
    }

    async def get(self) -> None:
        client = self.client()
        raw = self.get_signed_cookie(COOKIE, max_age_days=PENDING_MAX_AGE_S / 86400)
        self.clear_cookie(COOKIE, path=COOKIE_PATH)
        try:
            if self.get_query_argument("error", None):
                raise ChatError("the provider did not sign you in", code="oidc_denied")
            if raw is None:
                raise ChatError(
                    "sign-in expired or was started elsewhere; try again", code="oidc_state"
                )
            state, nonce, verifier = orjson.loads(raw)
            identity = await client.finish(
                PendingLogin(state, nonce, verifier),
                self.get_query_argument("state", "") or "",
                self.get_query_argument("code", "") or "",
            )
            pair = await self.accounts.login_external(identity)
        except ChatError as exc:
            self.metrics.errors.labels("http", exc.code).inc()
            self.redirect("/#" + urlencode({"login_error": exc.code}))
            return
        tokens = views.tokens(pair)
        self.redirect(
            "/#"
            + urlencode(
                {
                    "access_token": tokens["access_token"],
                    "refresh_token": tokens["refresh_token"],
                    "expires_in": tokens["expires_in"],
                }
            )
        )
