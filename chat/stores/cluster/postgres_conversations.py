"""Conversations, membership and read pointers in PostgreSQL."""

from __future__ import annotations

import asyncpg  # type: ignore[import-untyped]  # no stubs; see docs/cluster.md

from chat.domain.models import Conversation, ConversationKind, Role
from chat.stores.cluster.postgres_accounts import _count
from chat.stores.cluster.postgres_pool import postgres_errors
from chat.stores.rows import conversation_from_rows, conversation_values

_CONVERSATION = "id, kind, title, created_by, created_at"
_MEMBER = "conversation_id, user_id, role, read_seq, joined_at"


class PostgresConversationStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(self, conversation: Conversation, direct_key: str | None) -> Conversation:
        with postgres_errors():
            async with self._pool.acquire() as conn, conn.transaction():
                # ON CONFLICT on the unique direct_key: of two people opening the same DM at
                # once, exactly one insert wins and the other returns the winner's row.
                created = await conn.fetchval(
                    "INSERT INTO conversations (id, kind, title, created_by, created_at,"
                    " direct_key) VALUES ($1, $2, $3, $4, $5, $6)"
                    " ON CONFLICT (direct_key) DO NOTHING RETURNING id",
                    *conversation_values(conversation, direct_key),
                )
                if created is not None:
                    await conn.executemany(
                        "INSERT INTO members (conversation_id, user_id, role, read_seq,"
                        " joined_at) VALUES ($1, $2, $3, $4, $5)",
                        [
                            (conversation.id, m.user_id, m.role.value, m.read_seq, m.joined_at)
                            for m in conversation.members
                        ],
                    )
                    return conversation
                existing_id = await conn.fetchval(
                    "SELECT id FROM conversations WHERE direct_key = $1", direct_key
                )
        existing = await self.get(existing_id)
        assert existing is not None  # conversations are never deleted
        return existing

    async def get(self, conversation_id: str) -> Conversation | None:
        found = await self._many([conversation_id])
        return found[0] if found else None

    async def _many(self, ids: list[str]) -> list[Conversation]:
        """Conversations with their members, in two queries whatever the count."""
        with postgres_errors():
            async with self._pool.acquire() as conn:
                rows = await conn.fetch(
                    f"SELECT {_CONVERSATION} FROM conversations WHERE id = ANY($1::text[])"
                    " ORDER BY id",
                    ids,
                )
                members = await conn.fetch(
                    f"SELECT {_MEMBER} FROM members WHERE conversation_id = ANY($1::text[])"
                    " ORDER BY joined_at, user_id",
                    ids,
                )
        by_conversation: dict[str, list[asyncpg.Record]] = {}
        for m in members:
            by_conversation.setdefault(m["conversation_id"], []).append(m)
        return [conversation_from_rows(r, by_conversation.get(r["id"], [])) for r in rows]

    async def list_for_user(self, user_id: str) -> list[Conversation]:
        return await self._many(await self.conversation_ids_for_user(user_id))

    async def conversation_ids_for_user(self, user_id: str) -> list[str]:
        with postgres_errors():
            rows = await self._pool.fetch(
                "SELECT conversation_id FROM members WHERE user_id = $1 ORDER BY conversation_id",
                user_id,
            )
        return [r["conversation_id"] for r in rows]

    async def add_member(self, conversation_id: str, user_id: str, role: Role, now: int) -> bool:
        with postgres_errors():
            status = await self._pool.execute(
                "INSERT INTO members (conversation_id, user_id, role, read_seq, joined_at)"
                " VALUES ($1, $2, $3, 0, $4) ON CONFLICT DO NOTHING",
                conversation_id,
                user_id,
                role.value,
                now,
            )
        return _count(status) > 0

    async def remove_member(self, conversation_id: str, user_id: str) -> bool:
        with postgres_errors():
            status = await self._pool.execute(
                "DELETE FROM members WHERE conversation_id = $1 AND user_id = $2",
                conversation_id,
                user_id,
            )
        return _count(status) > 0

    async def is_member(self, conversation_id: str, user_id: str) -> bool:
        with postgres_errors():
            found = await self._pool.fetchval(
                "SELECT 1 FROM members WHERE conversation_id = $1 AND user_id = $2",
                conversation_id,
                user_id,
            )
        return found is not None

    async def set_read(self, conversation_id: str, user_id: str, seq: int) -> int:
        with postgres_errors():
            # GREATEST in one statement: concurrent readers can only move the pointer forward.
            pointer = await self._pool.fetchval(
                "UPDATE members SET read_seq = GREATEST(read_seq, $1)"
                " WHERE conversation_id = $2 AND user_id = $3 RETURNING read_seq",
                seq,
                conversation_id,
                user_id,
            )
        return int(pointer) if pointer is not None else 0

    async def kinds(self) -> dict[ConversationKind, int]:
        with postgres_errors():
            rows = await self._pool.fetch(
                "SELECT kind, COUNT(*) AS n FROM conversations GROUP BY kind"
            )
        counts = dict.fromkeys(ConversationKind, 0)
        for r in rows:
            counts[ConversationKind(r["kind"])] = r["n"]
        return counts
