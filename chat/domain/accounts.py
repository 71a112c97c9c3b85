"""Accounts: registration, login, token rotation, logout, disabling users."""

from __future__ import annotations

import asyncio
import re
import secrets
from dataclasses import dataclass

from chat.domain import validation
from chat.domain.channels import user_channel
from chat.domain.clock import Clock, now_ms
from chat.domain.errors import (
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    RateLimited,
    Unauthenticated,
)
from chat.domain.frames import control_frame
from chat.domain.ids import new_id
from chat.domain.limits import Limits
from chat.domain.models import ExternalIdentity, User
from chat.domain.passwords import PasswordHasher
from chat.domain.ports import AccountStore, Bus, RateLimiter, SessionStore
from chat.domain.tokens import RefreshToken, TokenIssuer

# People search bounds (GET /api/v1/users?q=): the longest prefix, the default and largest page.
USER_SEARCH_MAX_CHARS = 64
USER_SEARCH_DEFAULT_LIMIT = 10
USER_SEARCH_MAX_LIMIT = 20


def _username_from(identity: ExternalIdentity) -> str:
    raw = (identity.preferred_username or identity.name or "user").lower()
    cleaned = re.sub(r"[^a-z0-9_.-]+", "-", raw).strip("-._") or "user"
    cleaned = cleaned[:32]
    return cleaned if validation.USERNAME.fullmatch(cleaned) else f"user-{cleaned}"[:32]


# Close codes sent to sockets whose session ended; see chat.ws.close_codes.
CLOSE_SESSION_REVOKED = 4409
CLOSE_USER_DISABLED = 4403


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the user and the session (refresh family) their token belongs to."""

    user: User
    session_id: str


@dataclass(frozen=True, slots=True)
class TokenPair:
    user: User
    access_token: str
    refresh_token: str
    expires_in: int


class AccountService:
    def __init__(
        self,
        accounts: AccountStore,
        sessions: SessionStore,
        bus: Bus,
        hasher: PasswordHasher,
        tokens: TokenIssuer,
        clock: Clock,
        *,
        refresh_ttl_s: int,
        admins: frozenset[str],
        limiter: RateLimiter,
        limits: Limits,
    ) -> None:
        self._accounts = accounts
        self._sessions = sessions
        self._bus = bus
        self._hasher = hasher
        self._tokens = tokens
        self._clock = clock
        self._refresh_ttl_s = refresh_ttl_s
        self._admins = admins
        self._limiter = limiter
        self._limits = limits

    async def _throttle(self, action: str, client_ip: str, username: object) -> None:
        """Token buckets per client IP and per username, taken before any argon2 work: each
        attempt costs tens of milliseconds of CPU, so unbounded attempts are a denial of service
        (and, for login, password guessing). Both buckets are always charged."""
        lim = self._limits
        if action == "login":
            ip_rule = (lim.login_rate_per_ip_per_s, lim.login_burst_per_ip)
            name_rule = (lim.login_rate_per_username_per_s, lim.login_burst_per_username)
        else:
            ip_rule = (lim.register_rate_per_ip_per_s, lim.register_burst_per_ip)
            name_rule = (lim.register_rate_per_username_per_s, lim.register_burst_per_username)
        waits = {"ip": await self._limiter.allow(f"{action}:ip:{client_ip}", *ip_rule)}
        if isinstance(username, str) and username:
            key = f"{action}:user:{username.lower()[:64]}"
            waits["username"] = await self._limiter.allow(key, *name_rule)
        scope, wait = max(waits.items(), key=lambda item: item[1])
        if wait > 0:
            raise RateLimited(
                f"too many {action} attempts; retry later",
                retry_after_ms=int(wait * 1000) + 1,
                scope=scope,
            )

    async def register(
        self, username: object, password: object, name: object, *, client_ip: str = ""
    ) -> TokenPair:
        await self._throttle("register", client_ip, username)
        uname = validation.username(username)
        pw = validation.password(password)
        user = User(
            id=new_id("u"),
            username=uname,
            display_name=validation.display_name(name, uname),
            created_at=now_ms(self._clock),
            is_admin=uname in self._admins,
        )
        # argon2 takes tens of milliseconds of CPU: keep it off the event loop.
        password_hash = await asyncio.to_thread(self._hasher.hash, pw)
        await self._accounts.create_user(user, password_hash)
        return await self._start_session(user)

    async def login(self, username: object, password: object, *, client_ip: str = "") -> TokenPair:
        await self._throttle("login", client_ip, username)
        if not isinstance(username, str) or not isinstance(password, str):
            raise Unauthenticated("wrong username or password", code="invalid_credentials")
        creds = await self._accounts.credentials_by_username(username.lower())
        stored = creds.password_hash if creds else None
        ok = await asyncio.to_thread(self._hasher.verify, stored, password)
        if creds is None or not ok:
            raise Unauthenticated("wrong username or password", code="invalid_credentials")
        if creds.user.disabled:
            raise Forbidden("this account is disabled", code="user_disabled")
        if self._hasher.needs_rehash(creds.password_hash):
            new_hash = await asyncio.to_thread(self._hasher.hash, password)
            await self._accounts.set_password_hash(creds.user.id, new_hash)
        return await self._start_session(creds.user)

    async def login_external(self, identity: ExternalIdentity) -> TokenPair:
        """Sign in with an OpenID Provider: the identity is linked to one user, created on
        first sign-in with a username derived from the provider's, made unique if taken."""
        user = await self._accounts.user_by_identity(identity.issuer, identity.subject)
        if user is None:
            base = _username_from(identity)
            for attempt in range(6):
                candidate = base if attempt == 0 else f"{base[:26]}-{secrets.token_hex(2)}"
                fresh = User(
                    id=new_id("u"),
                    username=candidate,
                    display_name=(identity.name or candidate)[:64],
                    created_at=now_ms(self._clock),
                    is_admin=candidate in self._admins,
                )
                try:
                    await self._accounts.create_linked_user(
                        fresh, identity.issuer, identity.subject
                    )
                except Conflict as exc:
                    if exc.code == "identity_taken":
                        break  # a concurrent first sign-in linked it: use that user
                    continue
                user = fresh
                break
            if user is None:
                user = await self._accounts.user_by_identity(identity.issuer, identity.subject)
            if user is None:
                raise Conflict("could not pick a free username", code="username_taken")
        if user.disabled:
            raise Forbidden("this account is disabled", code="user_disabled")
        return await self._start_session(user)

    async def refresh(self, raw: object) -> TokenPair:
        if not isinstance(raw, str):
            raise Unauthenticated("refresh token missing", code="token_invalid")
        presented = RefreshToken.parse(raw)
        # Deterministic, so a retry of this rotation within the grace window gets the same
        # new token instead of logging the user out (docs/auth.md).
        replacement = presented.successor(self._tokens.rotation_key)
        outcome = await self._sessions.rotate(
            presented.family_id,
            presented.hash,
            replacement.hash,
            self._refresh_ttl_s,
            grace_s=self._limits.refresh_grace_s,
        )
        if outcome.reused:
            # A token that was already rotated came back: someone holds a copy. The family is
            # revoked; close its sockets too.
            await self._bus.publish(
                user_channel(outcome.user_id or ""),
                control_frame("close", session_id=presented.family_id, code=CLOSE_SESSION_REVOKED),
            )
            raise Unauthenticated("refresh token reused; session revoked", code="refresh_reused")
        if outcome.user_id is None:
            raise Unauthenticated("refresh token invalid or expired", code="token_invalid")
        user = await self._accounts.get_user(outcome.user_id)
        if user is None or user.disabled:
            await self._sessions.revoke(presented.family_id)
            raise Forbidden("this account is disabled", code="user_disabled")
        return TokenPair(
            user,
            self._tokens.issue(user.id, presented.family_id),
            str(replacement),
            self._tokens.access_ttl_s,
        )

    async def authenticate(self, access_token: object) -> Principal:
        if not isinstance(access_token, str) or not access_token:
            raise Unauthenticated("access token missing", code="unauthenticated")
        claims = self._tokens.verify(access_token)
        if not await self._sessions.is_active(claims.session_id):
            raise Unauthenticated("session ended", code="session_revoked")
        user = await self._accounts.get_user(claims.user_id)
        if user is None:
            raise Unauthenticated("user not found", code="token_invalid")
        if user.disabled:
            raise Forbidden("this account is disabled", code="user_disabled")
        return Principal(user, claims.session_id)

    async def logout(self, principal: Principal, everywhere: bool) -> None:
        if everywhere:
            await self._sessions.revoke_user(principal.user.id)
            frame = control_frame("close", session_id=None, code=CLOSE_SESSION_REVOKED)
        else:
            await self._sessions.revoke(principal.session_id)
            frame = control_frame(
                "close", session_id=principal.session_id, code=CLOSE_SESSION_REVOKED
            )
        await self._bus.publish(user_channel(principal.user.id), frame)

    async def set_disabled(self, admin: Principal, user_id: str, disabled: bool) -> User:
        if not admin.user.is_admin:
            raise Forbidden("admin only", code="admin_only")
        if user_id == admin.user.id and disabled:
            raise Conflict("you cannot disable yourself", code="conflict")
        if not await self._accounts.set_disabled(user_id, disabled):
            raise NotFound("no such user", code="user_not_found")
        if disabled:
            await self._sessions.revoke_user(user_id)
            await self._bus.publish(
                user_channel(user_id),
                control_frame("close", session_id=None, code=CLOSE_USER_DISABLED),
            )
        user = await self._accounts.get_user(user_id)
        assert user is not None  # set_disabled just found it
        return user

    async def get_user(self, user_id: str) -> User:
        user = await self._accounts.get_user(user_id)
        if user is None:
            raise NotFound("no such user", code="user_not_found")
        return user

    async def find_user(self, username: str) -> User:
        user = await self._accounts.find_by_username(username.lower())
        if user is None:
            raise NotFound("no such user", code="user_not_found")
        return user

    async def search_users(self, q: object, limit: object = None) -> list[User]:
        """People search for autocomplete: a prefix of a username or of a display name's
        word. Bounded (`USER_SEARCH_MAX_LIMIT`), so it cannot list the whole directory at once."""
        if not isinstance(q, str) or not 1 <= len(q.strip()) <= USER_SEARCH_MAX_CHARS:
            raise InvalidRequest(f"q must be 1-{USER_SEARCH_MAX_CHARS} characters")
        if any(ord(c) < 32 or ord(c) == 127 for c in q):
            # No name contains one, and PostgreSQL text cannot hold NUL.
            raise InvalidRequest("q must not contain control characters")
        if limit is None:
            limit = USER_SEARCH_DEFAULT_LIMIT
        if type(limit) is not int or not 1 <= limit <= USER_SEARCH_MAX_LIMIT:
            raise InvalidRequest(f"limit must be 1-{USER_SEARCH_MAX_LIMIT}")
        return await self._accounts.search_users(q.strip(), limit)

    async def _start_session(self, user: User) -> TokenPair:
        refresh = RefreshToken.new()
        await self._sessions.create(refresh.family_id, user.id, refresh.hash, self._refresh_ttl_s)
        return TokenPair(
            user,
            self._tokens.issue(user.id, refresh.family_id),
            str(refresh),
            self._tokens.access_ttl_s,
        )
