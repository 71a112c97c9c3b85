"""The relying-party side of OpenID Connect.

Authlib builds the authorization URL (with S256 PKCE) and performs the code exchange; the ID
token is verified here with joserfc against the provider's JWKS: signature, `iss`, `aud`,
`exp` and the `nonce` this login started with.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

import httpx2
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oidc.discovery import OpenIDProviderMetadata
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from chat.domain.errors import Unauthenticated, Unavailable
from chat.domain.models import ExternalIdentity

DISCOVERY_TTL_S = 3600.0
ID_TOKEN_ALGORITHMS = ["RS256", "PS256", "ES256", "EdDSA"]


@dataclass(frozen=True, slots=True)
class PendingLogin:
    """What the browser carries (in a signed cookie) between redirect and callback."""

    state: str
    nonce: str
    code_verifier: str


class OidcClient:
    def __init__(
        self, issuer: str, client_id: str, client_secret: str, scopes: str, redirect_uri: str
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret or None
        self._scopes = scopes
        self._redirect_uri = redirect_uri
        self._metadata: dict[str, Any] | None = None
        self._jwks: KeySet | None = None
        self._fetched_at = 0.0

    def _oauth(self) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self._client_id,
            client_secret=self._client_secret,
            scope=self._scopes,
            redirect_uri=self._redirect_uri,
            code_challenge_method="S256",
            token_endpoint_auth_method=("client_secret_basic" if self._client_secret else "none"),
            timeout=10,
        )

    async def _discover(self, refresh: bool = False) -> dict[str, Any]:
        stale = time.monotonic() - self._fetched_at > DISCOVERY_TTL_S
        if self._metadata is None or stale or refresh:
            try:
                async with httpx2.AsyncClient(timeout=10) as http:
                    meta = (
                        await http.get(f"{self.issuer}/.well-known/openid-configuration")
                    ).raise_for_status()
                    metadata = OpenIDProviderMetadata(meta.json())
                    metadata.validate()
                    if metadata["issuer"].rstrip("/") != self.issuer:
                        raise ValueError("issuer in discovery document differs")
                    keys = (await http.get(metadata["jwks_uri"])).raise_for_status()
            except (httpx2.HTTPError, ValueError) as exc:
                raise Unavailable(
                    f"identity provider unreachable: {exc}", code="idp_unavailable"
                ) from exc
            self._metadata = dict(metadata)
            self._jwks = KeySet.import_key_set(keys.json())
            self._fetched_at = time.monotonic()
        return self._metadata

    async def start(self) -> tuple[str, PendingLogin]:
        """The provider URL to send the browser to, and what to remember until it comes back."""
        metadata = await self._discover()
        pending = PendingLogin(
            secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48)
        )
        async with self._oauth() as client:
            url, _ = client.create_authorization_url(
                metadata["authorization_endpoint"],
                state=pending.state,
                code_verifier=pending.code_verifier,
                nonce=pending.nonce,
            )
        return str(url), pending

    async def finish(self, pending: PendingLogin, state: str, code: str) -> ExternalIdentity:
        if not secrets.compare_digest(state, pending.state):
            raise Unauthenticated("login state mismatch; start again", code="oidc_state")
        metadata = await self._discover()
        try:
            async with self._oauth() as client:
                token = await client.fetch_token(
                    metadata["token_endpoint"],
                    code=code,
                    code_verifier=pending.code_verifier,
                    grant_type="authorization_code",
                )
        except httpx2.HTTPError as exc:
            raise Unavailable(
                f"identity provider unreachable: {exc}", code="idp_unavailable"
            ) from exc
        except Exception as exc:  # Authlib raises OAuthError for an error response
            raise Unauthenticated(f"code exchange refused: {exc}", code="oidc_refused") from exc
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise Unauthenticated("provider returned no ID token", code="oidc_refused")
        claims = await self._verify(id_token, pending.nonce)
        claims.update(await self._userinfo(metadata, token, str(claims["sub"])))
        return ExternalIdentity(
            issuer=self.issuer,
            subject=str(claims["sub"]),
            preferred_username=_str(claims.get("preferred_username")),
            name=_str(claims.get("name")),
        )

    async def _userinfo(
        self, metadata: dict[str, Any], token: dict[str, Any], subject: str
    ) -> dict[str, Any]:
        """Profile claims usually come from the UserInfo endpoint, not the ID token. Its `sub`
        must be the ID token's (OIDC Core §5.3.2), else the answer is ignored."""
        endpoint = metadata.get("userinfo_endpoint")
        access = token.get("access_token")
        if not endpoint or not isinstance(access, str):
            return {}
        try:
            async with httpx2.AsyncClient(timeout=10) as http:
                r = await http.get(endpoint, headers={"Authorization": f"Bearer {access}"})
            info = r.json() if r.is_success else {}
        except (httpx2.HTTPError, ValueError):
            return {}
        if not isinstance(info, dict) or info.get("sub") != subject:
            return {}
        return {k: info[k] for k in ("preferred_username", "name") if k in info}

    async def _verify(self, id_token: str, nonce: str) -> dict[str, Any]:
        for attempt in range(2):
            assert self._jwks is not None
            try:
                decoded = jwt.decode(id_token, self._jwks, algorithms=ID_TOKEN_ALGORITHMS)
                break
            except JoseError as exc:
                if attempt == 0:
                    await self._discover(refresh=True)  # the provider may have rotated keys
                    continue
                raise Unauthenticated("ID token signature invalid", code="oidc_refused") from exc
        registry = jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self._client_id},
            sub={"essential": True},
            exp={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        try:
            registry.validate(decoded.claims)
        except JoseError as exc:
            raise Unauthenticated(f"ID token rejected: {exc}", code="oidc_refused") from exc
        return dict(decoded.claims)


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
