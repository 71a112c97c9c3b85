"""Access tokens (JWT, HS256 pinned; iss, aud, exp, sub checked) and opaque refresh tokens.

Access tokens are short-lived and carry the session (refresh family) id, so logging out or
disabling a user makes them stop working at once: the session is checked on every use.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from joserfc import jwt
from joserfc.errors import ExpiredTokenError, JoseError
from joserfc.jwk import OctKey

from chat.domain.clock import Clock
from chat.domain.errors import Unauthenticated

ALGORITHM = "HS256"


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: str
    session_id: str
    expires_at: int


class TokenIssuer:
    def __init__(
        self, secret: str, *, issuer: str, audience: str, access_ttl_s: int, clock: Clock
    ) -> None:
        if len(secret.encode()) < 32:
            raise ValueError("the JWT secret must be at least 32 bytes")
        self._key = OctKey.import_key(secret.encode())
        self.rotation_key = hmac.new(secret.encode(), b"refresh-rotation", hashlib.sha256).digest()
        """Derives each refresh token's successor (RefreshToken.successor)."""
        self._issuer = issuer
        self._audience = audience
        self.access_ttl_s = access_ttl_s
        self._clock = clock

    def issue(self, user_id: str, session_id: str) -> str:
        now = int(self._clock())
        claims = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": user_id,
            "sid": session_id,
            "iat": now,
            "exp": now + self.access_ttl_s,
        }
        return jwt.encode({"alg": ALGORITHM}, claims, self._key, algorithms=[ALGORITHM])

    def verify(self, token: str) -> AccessClaims:
        try:
            decoded = jwt.decode(token, self._key, algorithms=[ALGORITHM])
            registry = jwt.JWTClaimsRegistry(
                now=lambda: int(self._clock()),
                iss={"essential": True, "value": self._issuer},
                aud={"essential": True, "value": self._audience},
                exp={"essential": True},
                sub={"essential": True},
                sid={"essential": True},
            )
            registry.validate(decoded.claims)
        except ExpiredTokenError as exc:
            raise Unauthenticated("access token expired", code="token_expired") from exc
        except (JoseError, ValueError, TypeError) as exc:
            raise Unauthenticated("access token invalid", code="token_invalid") from exc
        claims = decoded.claims
        if not isinstance(claims.get("sub"), str) or not isinstance(claims.get("sid"), str):
            raise Unauthenticated("access token invalid", code="token_invalid")
        return AccessClaims(str(claims["sub"]), str(claims["sid"]), int(claims["exp"]))


@dataclass(frozen=True, slots=True)
class RefreshToken:
    family_id: str
    secret: str

    def __str__(self) -> str:
        return f"{self.family_id}.{self.secret}"

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.secret.encode()).hexdigest()

    @classmethod
    def new(cls, family_id: str | None = None) -> RefreshToken:
        return cls(family_id or secrets.token_urlsafe(16), secrets.token_urlsafe(32))

    def successor(self, key: bytes) -> RefreshToken:
        """The token that rotating this one yields: a keyed hash of it, so a retried rotation
        asks for (and gets) the same new token while only hashes are stored. Unguessable
        without both this token and the server's key."""
        mac = hmac.new(key, str(self).encode(), hashlib.sha256).digest()
        return RefreshToken(self.family_id, base64.urlsafe_b64encode(mac).rstrip(b"=").decode())

    @classmethod
    def parse(cls, raw: str) -> RefreshToken:
        family_id, dot, secret = raw.partition(".")
        if not dot or not family_id or not secret or len(raw) > 200:
            raise Unauthenticated("refresh token malformed", code="token_invalid")
        return cls(family_id, secret)
