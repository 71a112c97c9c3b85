"""Users and credentials in PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg  # type: ignore[import-untyped]  # no stubs; see docs/cluster.md

from chat.domain.errors import Conflict
from chat.domain.models import Credentials, User
from chat.domain.passwords import NO_PASSWORD
from chat.stores.cluster.postgres_pool import postgres_errors

_COLUMNS = "id, username, display_name, created_at, disabled, is_admin"
# The root ICU collation: Unicode lower case whatever the database's locale (PostgreSQL built
# with ICU, as Debian's and the official images are).
_FOLDED_NAME = 'lower(display_name COLLATE "und-x-icu")'


def _user(row: asyncpg.Record) -> User:
    return User(
        id=row["id"],
        username=row["username"],
        display_name=row["display_name"],
        created_at=row["created_at"],
        disabled=row["disabled"],
        is_admin=row["is_admin"],
    )


class PostgresAccountStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create_user(self, user: User, password_hash: str) -> None:
        try:
            with postgres_errors():
                await self._pool.execute(
                    "INSERT INTO users (id, username, display_name, password_hash, created_at,"
                    " disabled, is_admin) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    user.id,
                    user.username,
                    user.display_name,
                    password_hash,
                    user.created_at,
                    user.disabled,
                    user.is_admin,
                )
        except asyncpg.UniqueViolationError as exc:
            raise Conflict("that username is taken", code="username_taken") from exc

    async def credentials_by_username(self, username: str) -> Credentials | None:
        with postgres_errors():
            row = await self._pool.fetchrow(
                f"SELECT {_COLUMNS}, password_hash FROM users WHERE username = $1", username
            )
        return Credentials(_user(row), row["password_hash"]) if row else None

    async def get_user(self, user_id: str) -> User | None:
        with postgres_errors():
            row = await self._pool.fetchrow(f"SELECT {_COLUMNS} FROM users WHERE id = $1", user_id)
        return _user(row) if row else None

    async def get_users(self, user_ids: Sequence[str]) -> list[User]:
        if not user_ids:
            return []
        with postgres_errors():
            rows = await self._pool.fetch(
                f"SELECT {_COLUMNS} FROM users WHERE id = ANY($1::text[]) ORDER BY username",
                list(user_ids),
            )
        return [_user(r) for r in rows]

    async def find_by_username(self, username: str) -> User | None:
        with postgres_errors():
            row = await self._pool.fetchrow(
                f"SELECT {_COLUMNS} FROM users WHERE username = $1", username
            )
        return _user(row) if row else None

    async def search_users(self, prefix: str, limit: int) -> list[User]:
        # lower() folds only ASCII under the "C" locale; under an ICU collation it folds
        # Unicode, like the embedded store. starts_with/strpos match literally (no LIKE
        # pattern characters to escape).
        folded = prefix.lower()
        with postgres_errors():
            rows = await self._pool.fetch(
                f"SELECT {_COLUMNS} FROM users WHERE NOT disabled"
                " AND (starts_with(username, $1)"
                f" OR starts_with({_FOLDED_NAME}, $1) OR strpos({_FOLDED_NAME}, ' ' || $1) > 0)"
                " ORDER BY starts_with(username, $1) DESC, username LIMIT $2",
                folded,
                limit,
            )
        return [_user(r) for r in rows]

    async def set_disabled(self, user_id: str, disabled: bool) -> bool:
        with postgres_errors():
            status = await self._pool.execute(
                "UPDATE users SET disabled = $1 WHERE id = $2", disabled, user_id
            )
        return _count(status) > 0

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        with postgres_errors():
            await self._pool.execute(
                "UPDATE users SET password_hash = $1 WHERE id = $2", password_hash, user_id
            )

    async def user_by_identity(self, issuer: str, subject: str) -> User | None:
        columns = ", ".join(f"u.{c.strip()}" for c in _COLUMNS.split(","))
        with postgres_errors():
            row = await self._pool.fetchrow(
                f"SELECT {columns} FROM identities i JOIN users u ON u.id = i.user_id"
                " WHERE i.issuer = $1 AND i.subject = $2",
                issuer,
                subject,
            )
        return _user(row) if row else None

    async def create_linked_user(self, user: User, issuer: str, subject: str) -> None:
        with postgres_errors():
            async with self._pool.acquire() as conn, conn.transaction():
                try:
                    await conn.execute(
                        "INSERT INTO users (id, username, display_name, password_hash,"
                        " created_at, disabled, is_admin) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                        user.id,
                        user.username,
                        user.display_name,
                        NO_PASSWORD,
                        user.created_at,
                        user.disabled,
                        user.is_admin,
                    )
                except asyncpg.UniqueViolationError as exc:
                    raise Conflict("that username is taken", code="username_taken") from exc
                try:
                    await conn.execute(
                        "INSERT INTO identities (issuer, subject, user_id) VALUES ($1, $2, $3)",
                        issuer,
                        subject,
                        user.id,
                    )
                except asyncpg.UniqueViolationError as exc:
                    raise Conflict("identity already linked", code="identity_taken") from exc


def _count(status: str) -> int:
    """Rows affected, from a command tag such as "UPDATE 1" or "INSERT 0 1"."""
    return int(status.rsplit(" ", 1)[-1])
