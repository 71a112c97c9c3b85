"""Conversations, membership and read pointers in SQLite."""

from __future__ import annotations

import sqlite3

from chat.domain.models import Conversation, ConversationKind, Role
from chat.stores.embedded.db import Database
from chat.stores.rows import conversation_from_rows, conversation_values


class SqliteConversationStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, conversation: Conversation, direct_key: str | None) -> Conversation:
        if direct_key is not None:
            existing = await self._by_direct_key(direct_key)
            if existing is not None:
                return existing
        try:
            async with self._db.transaction() as conn:
                await conn.execute(
                    "INSERT INTO conversations (id, kind, title, created_by, created_at,"
                    " direct_key) VALUES (?, ?, ?, ?, ?, ?)",
                    conversation_values(conversation, direct_key),
                )
                await conn.executemany(
                    "INSERT INTO members (conversation_id, user_id, role, read_seq, joined_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    [
                        (conversation.id, m.user_id, m.role.value, m.read_seq, m.joined_at)
                        for m in conversation.members
                    ],
                )
        except sqlite3.IntegrityError:
            # Two people opened the same DM at once: the other insert won; use its row.
            if direct_key is not None:
                existing = await self._by_direct_key(direct_key)
                if existing is not None:
                    return existing
            raise
        return conversation

    async def _by_direct_key(self, direct_key: str) -> Conversation | None:
        row = await self._db.fetchone(
            "SELECT id FROM conversations WHERE direct_key = ?", (direct_key,)
        )
        return await self.get(row["id"]) if row else None

    async def get(self, conversation_id: str) -> Conversation | None:
        row = await self._db.fetchone(
            "SELECT id, kind, title, created_by, created_at FROM conversations WHERE id = ?",
            (conversation_id,),
        )
        if row is None:
            return None
        members = await self._db.fetchall(
            "SELECT user_id, role, read_seq, joined_at FROM members WHERE conversation_id = ?"
            " ORDER BY joined_at, user_id",
            (conversation_id,),
        )
        return conversation_from_rows(row, members)

    async def list_for_user(self, user_id: str) -> list[Conversation]:
        found = []
        for cid in await self.conversation_ids_for_user(user_id):
            conversation = await self.get(cid)
            if conversation is not None:
                found.append(conversation)
        return found

    async def conversation_ids_for_user(self, user_id: str) -> list[str]:
        rows = await self._db.fetchall(
            "SELECT conversation_id FROM members WHERE user_id = ? ORDER BY conversation_id",
            (user_id,),
        )
        return [r["conversation_id"] for r in rows]

    async def add_member(self, conversation_id: str, user_id: str, role: Role, now: int) -> bool:
        changed = await self._db.execute(
            "INSERT OR IGNORE INTO members (conversation_id, user_id, role, read_seq, joined_at)"
            " VALUES (?, ?, ?, 0, ?)",
            (conversation_id, user_id, role.value, now),
        )
        return changed > 0

    async def remove_member(self, conversation_id: str, user_id: str) -> bool:
        changed = await self._db.execute(
            "DELETE FROM members WHERE conversation_id = ? AND user_id = ?",
            (conversation_id, user_id),
        )
        return changed > 0

    async def is_member(self, conversation_id: str, user_id: str) -> bool:
        row = await self._db.fetchone(
            "SELECT 1 FROM members WHERE conversation_id = ? AND user_id = ?",
            (conversation_id, user_id),
        )
        return row is not None

    async def set_read(self, conversation_id: str, user_id: str, seq: int) -> int:
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE members SET read_seq = MAX(read_seq, ?)"
                " WHERE conversation_id = ? AND user_id = ?",
                (seq, conversation_id, user_id),
            )
            cursor = await conn.execute(
                "SELECT read_seq FROM members WHERE conversation_id = ? AND user_id = ?",
                (conversation_id, user_id),
            )
            row = await cursor.fetchone()
        return int(row["read_seq"]) if row else 0

    async def kinds(self) -> dict[ConversationKind, int]:
        rows = await self._db.fetchall(
            "SELECT kind, COUNT(*) AS n FROM conversations GROUP BY kind"
        )
        counts = {k: 0 for k in ConversationKind}
        for r in rows:
            counts[ConversationKind(r["kind"])] = r["n"]
        return counts
