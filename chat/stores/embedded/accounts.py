"""Users and credentials in SQLite."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import aiosqlite

from chat.domain.errors import Conflict
from chat.domain.models import Credentials, User
from chat.domain.passwords import NO_PASSWORD
from chat.stores.embedded.db import Database
from chat.stores.embedded.fold import ensure_functions, fold

_COLUMNS = "id, username, display_name, created_at, disabled, is_admin"


def _user(row: aiosqlite.Row) -> User:
    return User(
        id=row["id"],
        username=row["username"],
        display_name=row["display_name"],
        created_at=row["created_at"],
        disabled=bool(row["disabled"]),
        is_admin=bool(row["is_admin"]),
    )


class SqliteAccountStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create_user(self, user: User, password_hash: str) -> None:
        try:
            await self._db.execute(
                "INSERT INTO users (id, username, display_name, password_hash, created_at,"
                " disabled, is_admin) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    user.id,
                    user.username,
                    user.display_name,
                    password_hash,
                    user.created_at,
                    int(user.disabled),
                    int(user.is_admin),
                ),
            )
        except sqlite3.IntegrityError as exc:
            raise Conflict("that username is taken", code="username_taken") from exc

    async def credentials_by_username(self, username: str) -> Credentials | None:
        row = await self._db.fetchone(
            f"SELECT {_COLUMNS}, password_hash FROM users WHERE username = ?",
            (username,),
        )
        return Credentials(_user(row), row["password_hash"]) if row else None

    async def get_user(self, user_id: str) -> User | None:
        row = await self._db.fetchone(
            f"SELECT {_COLUMNS} FROM users WHERE id = ?",
            (user_id,),
        )
        return _user(row) if row else None

    async def get_users(self, user_ids: Sequence[str]) -> list[User]:
        if not user_ids:
            return []
        marks = ",".join("?" * len(user_ids))
        rows = await self._db.fetchall(
            f"SELECT {_COLUMNS} FROM users WHERE id IN ({marks}) ORDER BY username",
            user_ids,
        )
        return [_user(r) for r in rows]

    async def find_by_username(self, username: str) -> User | None:
        row = await self._db.fetchone(
            f"SELECT {_COLUMNS} FROM users WHERE username = ?",
            (username,),
        )
        return _user(row) if row else None

    async def search_users(self, prefix: str, limit: int) -> list[User]:
        # Python's Unicode folding (fold.py), not SQLite's ASCII-only LIKE/lower().
        await ensure_functions(self._db)
        folded = fold(prefix)
        rows = await self._db.fetchall(
            f"SELECT {_COLUMNS} FROM users WHERE disabled = 0"
            " AND (substr(username, 1, ?) = ? OR chat_word_prefix(display_name, ?))"
            " ORDER BY substr(username, 1, ?) = ? DESC, username LIMIT ?",
            (len(folded), folded, folded, len(folded), folded, limit),
        )
        return [_user(r) for r in rows]

    async def set_disabled(self, user_id: str, disabled: bool) -> bool:
        changed = await self._db.execute(
            "UPDATE users SET disabled = ? WHERE id = ?", (int(disabled), user_id)
        )
        return changed > 0

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        await self._db.execute(
            "UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id)
        )

    async def user_by_identity(self, issuer: str, subject: str) -> User | None:
        row = await self._db.fetchone(
            f"SELECT {', '.join('u.' + c.strip() for c in _COLUMNS.split(','))}"
            " FROM identities i JOIN users u ON u.id = i.user_id"
            " WHERE i.issuer = ? AND i.subject = ?",
            (issuer, subject),
        )
        return _user(row) if row else None

    async def create_linked_user(self, user: User, issuer: str, subject: str) -> None:
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "SELECT 1 FROM identities WHERE issuer = ? AND subject = ?", (issuer, subject)
            )
            if await cursor.fetchone() is not None:
                raise Conflict("identity already linked", code="identity_taken")
            try:
                await conn.execute(
                    "INSERT INTO users (id, username, display_name, password_hash, created_at,"
                    " disabled, is_admin) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        user.id,
                        user.username,
                        user.display_name,
                        NO_PASSWORD,
                        user.created_at,
                        int(user.disabled),
                        int(user.is_admin),
                    ),
                )
            except sqlite3.IntegrityError as exc:
                raise Conflict("that username is taken", code="username_taken") from exc
            await conn.execute(
                "INSERT INTO identities (issuer, subject, user_id) VALUES (?, ?, ?)",
                (issuer, subject, user.id),
            )
