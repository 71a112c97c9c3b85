"""Refresh-token families in SQLite. Spent token hashes are remembered so a replayed token is
recognised as theft and revokes its family; the latest rotation (`session_grace`) is remembered
so that retrying it within the grace window is answered, not punished (SessionStore.rotate)."""

from __future__ import annotations

from chat.domain.clock import Clock
from chat.domain.models import RefreshOutcome
from chat.stores.embedded.db import Database


class SqliteSessionStore:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def create(self, family_id: str, user_id: str, token_hash: str, ttl_s: int) -> None:
        await self._db.execute(
            "INSERT INTO sessions (family_id, user_id, token_hash, expires_at) VALUES (?, ?, ?, ?)",
            (family_id, user_id, token_hash, self._clock() + ttl_s),
        )

    async def rotate(
        self, family_id: str, presented_hash: str, new_hash: str, ttl_s: int, *, grace_s: float = 0
    ) -> RefreshOutcome:
        now = self._clock()
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "SELECT user_id, token_hash, expires_at, revoked FROM sessions WHERE family_id = ?",
                (family_id,),
            )
            row = await cursor.fetchone()
            if row is None:
                return RefreshOutcome(None)
            if row["revoked"] or row["expires_at"] < now:
                return RefreshOutcome(None)
            if row["token_hash"] == presented_hash:
                await conn.execute(
                    "INSERT OR IGNORE INTO session_spent (family_id, token_hash) VALUES (?, ?)",
                    (family_id, presented_hash),
                )
                await conn.execute(
                    "UPDATE sessions SET token_hash = ?, expires_at = ? WHERE family_id = ?",
                    (new_hash, now + ttl_s, family_id),
                )
                await conn.execute(
                    "INSERT OR REPLACE INTO session_grace (family_id, previous_hash, rotated_at)"
                    " VALUES (?, ?, ?)",
                    (family_id, presented_hash, now),
                )
                return RefreshOutcome(row["user_id"])
            cursor = await conn.execute(
                "SELECT previous_hash, rotated_at FROM session_grace WHERE family_id = ?",
                (family_id,),
            )
            last = await cursor.fetchone()
            if (
                grace_s > 0  # no window: not even a retry within the same clock tick
                and last is not None
                and last["previous_hash"] == presented_hash
                and row["token_hash"] == new_hash
                and now - last["rotated_at"] <= grace_s
            ):
                return RefreshOutcome(row["user_id"], retried=True)
            cursor = await conn.execute(
                "SELECT 1 FROM session_spent WHERE family_id = ? AND token_hash = ?",
                (family_id, presented_hash),
            )
            if await cursor.fetchone() is not None:
                await conn.execute(
                    "UPDATE sessions SET revoked = 1 WHERE family_id = ?", (family_id,)
                )
                return RefreshOutcome(row["user_id"], reused=True)
            return RefreshOutcome(None)

    async def is_active(self, family_id: str) -> bool:
        row = await self._db.fetchone(
            "SELECT 1 FROM sessions WHERE family_id = ? AND revoked = 0 AND expires_at >= ?",
            (family_id, self._clock()),
        )
        return row is not None

    async def revoke(self, family_id: str) -> None:
        await self._db.execute("UPDATE sessions SET revoked = 1 WHERE family_id = ?", (family_id,))

    async def revoke_user(self, user_id: str) -> list[str]:
        rows = await self._db.fetchall(
            "SELECT family_id FROM sessions WHERE user_id = ? AND revoked = 0", (user_id,)
        )
        await self._db.execute("UPDATE sessions SET revoked = 1 WHERE user_id = ?", (user_id,))
        return [r["family_id"] for r in rows]
