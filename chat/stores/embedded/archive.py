"""The message archive in SQLite: every event (for exact replay of old ranges) plus messages
with edits applied (for history and search)."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from functools import partial

import aiosqlite

from chat.domain.models import Event, EventKind, Message
from chat.stores.embedded.db import Database
from chat.stores.embedded.event_log import _event
from chat.stores.embedded.fold import ensure_functions, fold

_MESSAGE_COLUMNS = "conversation_id, seq, sender_id, client_id, body, ts, edited_ts, deleted"


def _message(row: aiosqlite.Row) -> Message:
    return Message(
        conversation_id=row["conversation_id"],
        seq=row["seq"],
        sender_id=row["sender_id"],
        client_id=row["client_id"],
        body=row["body"],
        ts=row["ts"],
        edited_ts=row["edited_ts"],
        deleted=bool(row["deleted"]),
    )


_MOVE_WATERMARK = (
    "INSERT INTO watermarks (conversation_id, seq) VALUES (?, ?)"
    " ON CONFLICT (conversation_id) DO UPDATE SET seq = MAX(seq, excluded.seq)"
)


def _apply(events: list[Event], raw: sqlite3.Connection) -> None:
    """One transaction, in one hop to the database thread (not a hop per statement).

    Committed with synchronous=NORMAL: no fsync of its own. Nothing acked depends on it (the
    log holds every event durably until a later trim), and WAL is one append-only file, so the
    next fsynced commit (any send, or the trim that follows this) makes it durable too; a power
    cut before that loses this transaction whole, watermark included, and the worker archives
    the same events again from the log."""
    cur = raw.cursor()
    cur.execute("PRAGMA synchronous=NORMAL")
    try:
        cur.execute("BEGIN IMMEDIATE")
        try:
            _apply_events(cur, events)
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
    finally:
        cur.execute("PRAGMA synchronous=FULL")
        cur.close()


def _apply_events(cur: sqlite3.Cursor, events: list[Event]) -> None:
    highest: dict[str, int] = {}
    for ev in events:
        highest[ev.conversation_id] = max(highest.get(ev.conversation_id, 0), ev.seq)
        cur.execute(
            "INSERT OR IGNORE INTO archive_events VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                ev.conversation_id,
                ev.seq,
                ev.kind.value,
                ev.sender_id,
                ev.client_id,
                ev.body,
                ev.target_seq,
                ev.ts,
            ),
        )
        if ev.kind is EventKind.MESSAGE:
            cur.execute(
                "INSERT OR IGNORE INTO messages (conversation_id, seq, sender_id,"
                " client_id, body, ts) VALUES (?, ?, ?, ?, ?, ?)",
                (ev.conversation_id, ev.seq, ev.sender_id, ev.client_id, ev.body, ev.ts),
            )
        elif ev.kind is EventKind.EDIT:
            # `changed_by_seq < ?`: a replayed older edit never overwrites a newer one, and
            # nothing revives a deleted message.
            cur.execute(
                "UPDATE messages SET body = ?, edited_ts = ?, changed_by_seq = ?"
                " WHERE conversation_id = ? AND seq = ? AND changed_by_seq < ?"
                " AND deleted = 0",
                (ev.body, ev.ts, ev.seq, ev.conversation_id, ev.target_seq, ev.seq),
            )
        else:
            cur.execute(
                "UPDATE messages SET body = '', deleted = 1, edited_ts = ?,"
                " changed_by_seq = MAX(changed_by_seq, ?)"
                " WHERE conversation_id = ? AND seq = ?",
                (ev.ts, ev.seq, ev.conversation_id, ev.target_seq),
            )
    # The watermarks move in the same transaction: free here, so this store's are exact and
    # its event log records no progress of its own (`EventLog.archived` is None).
    cur.executemany(_MOVE_WATERMARK, list(highest.items()))


class SqliteArchive:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def apply(self, events: Sequence[Event]) -> None:
        if events:
            await self._db.run(partial(_apply, list(events)))

    async def record_watermarks(self, marks: Mapping[str, int]) -> None:
        if marks:
            async with self._db.transaction() as conn:
                for cid, seq in marks.items():
                    await conn.execute(_MOVE_WATERMARK, (cid, seq))

    async def watermark(self, conversation_id: str) -> int:
        row = await self._db.fetchone(
            "SELECT seq FROM watermarks WHERE conversation_id = ?", (conversation_id,)
        )
        return int(row["seq"]) if row else 0

    async def watermarks(self, conversation_ids: Sequence[str]) -> dict[str, int]:
        ids = list(conversation_ids)
        found: dict[str, int] = {}
        for start in range(0, len(ids), 500):  # SQLite's bound on variables per statement
            chunk = ids[start : start + 500]
            rows = await self._db.fetchall(
                "SELECT conversation_id, seq FROM watermarks"
                f" WHERE conversation_id IN ({','.join('?' * len(chunk))})",
                tuple(chunk),
            )
            found.update({str(r["conversation_id"]): int(r["seq"]) for r in rows})
        return {cid: found.get(cid, 0) for cid in ids}

    async def events(self, conversation_id: str, after_seq: int, limit: int) -> list[Event]:
        rows = await self._db.fetchall(
            "SELECT seq, kind, sender_id, client_id, body, target_seq, ts FROM archive_events"
            " WHERE conversation_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (conversation_id, after_seq, limit),
        )
        return [_event(conversation_id, r) for r in rows]

    async def history(
        self, conversation_id: str, *, before: int | None, after: int | None, limit: int
    ) -> list[Message]:
        if after is not None:
            rows = await self._db.fetchall(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages"
                " WHERE conversation_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (conversation_id, after, limit),
            )
            return [_message(r) for r in rows]
        rows = await self._db.fetchall(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages"
            " WHERE conversation_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
            (conversation_id, before if before is not None else 2**62, limit),
        )
        return [_message(r) for r in reversed(rows)]

    async def get(self, conversation_id: str, seq: int) -> Message | None:
        row = await self._db.fetchone(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? AND seq = ?",
            (conversation_id, seq),
        )
        return _message(row) if row else None

    async def search(self, conversation_ids: Sequence[str], text: str, limit: int) -> list[Message]:
        # Unicode case folding on both sides (fold.py); the text is matched literally.
        await ensure_functions(self._db)
        marks = ",".join("?" * len(conversation_ids))
        rows = await self._db.fetchall(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conversation_id IN ({marks})"
            " AND deleted = 0 AND chat_contains(body, ?) ORDER BY ts DESC, seq DESC LIMIT ?",
            (*conversation_ids, fold(text), limit),
        )
        return [_message(r) for r in rows]

    async def count_from_others(
        self, conversation_id: str, user_id: str, after_seq: int, up_to_seq: int
    ) -> int:
        row = await self._db.fetchone(
            "SELECT COUNT(*) AS n FROM messages WHERE conversation_id = ? AND seq > ?"
            " AND seq <= ? AND sender_id != ? AND deleted = 0",
            (conversation_id, after_seq, up_to_seq, user_id),
        )
        return int(row["n"]) if row else 0

    async def delete_older_than(self, ts: int) -> int:
        return await self._db.execute("DELETE FROM messages WHERE ts < ?", (ts,))
