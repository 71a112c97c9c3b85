"""Rows to domain records, shared by the SQL stores (asyncpg records and SQLite rows are both
read by column name)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from chat.domain.models import Conversation, ConversationKind, Member, Role


class Row(Protocol):
    """A result row read by column name: asyncpg.Record, sqlite3.Row."""

    def __getitem__(self, column: str, /) -> Any: ...


def conversation_from_rows(row: Row, members: Iterable[Row]) -> Conversation:
    """`row`: id, kind, title, created_by, created_at; `members`: user_id, role, read_seq,
    joined_at, in the order the conversation lists them."""
    return Conversation(
        id=row["id"],
        kind=ConversationKind(row["kind"]),
        title=row["title"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        members=tuple(
            Member(m["user_id"], Role(m["role"]), m["read_seq"], m["joined_at"]) for m in members
        ),
    )


def conversation_values(conversation: Conversation, direct_key: str | None) -> tuple[Any, ...]:
    """The `conversations` row of a new conversation, in the stores' INSERT column order: id,
    kind, title, created_by, created_at, direct_key."""
    c = conversation
    return (c.id, c.kind.value, c.title, c.created_by, c.created_at, direct_key)
