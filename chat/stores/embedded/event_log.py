"""The hot log in SQLite. Dedupe, seq assignment and the insert are one transaction, fsynced at
commit; the publish happens under the same lock, so the bus sees events in seq order."""

from __future__ import annotations

import asyncio

import aiosqlite

from chat.domain.channels import conversation_channel
from chat.domain.clock import Clock, now_ms
from chat.domain.frames import event_frame
from chat.domain.models import AppendResult, Event, EventDraft, EventKind, LogRange
from chat.domain.ports import Bus
from chat.stores.embedded.db import Database


def _event(conversation_id: str, row: aiosqlite.Row) -> Event:
    return Event(
        conversation_id=conversation_id,
        seq=row["seq"],
        kind=EventKind(row["kind"]),
        sender_id=row["sender_id"],
        client_id=row["client_id"],
        body=row["body"],
        target_seq=row["target_seq"],
        ts=row["ts"],
    )


class SqliteEventLog:
    def __init__(self, db: Database, bus: Bus, clock: Clock) -> None:
        self._db = db
        self._bus = bus
        self._clock = clock
        self._publish_lock = asyncio.Lock()

    async def append(self, draft: EventDraft) -> AppendResult:
        cid = draft.conversation_id
        async with self._publish_lock:
            async with self._db.transaction() as conn:
                cursor = await conn.execute(
                    "SELECT seq, kind, sender_id, client_id, body, target_seq, ts FROM log_dedupe"
                    " WHERE conversation_id = ? AND sender_id = ? AND client_id = ?",
                    (cid, draft.sender_id, draft.client_id),
                )
                seen = await cursor.fetchone()
                if seen is not None:
                    return AppendResult(_event(cid, seen), duplicate=True)
                await conn.execute(
                    "INSERT INTO log_heads (conversation_id, last_seq) VALUES (?, 1)"
                    " ON CONFLICT (conversation_id) DO UPDATE SET last_seq = last_seq + 1",
                    (cid,),
                )
                cursor = await conn.execute(
                    "SELECT last_seq FROM log_heads WHERE conversation_id = ?", (cid,)
                )
                head = await cursor.fetchone()
                assert head is not None
                event = Event(
                    cid,
                    int(head["last_seq"]),
                    draft.kind,
                    draft.sender_id,
                    draft.client_id,
                    draft.body,
                    draft.target_seq,
                    now_ms(self._clock),
                )
                row = (
                    cid,
                    event.seq,
                    event.kind.value,
                    event.sender_id,
                    event.client_id,
                    event.body,
                    event.target_seq,
                    event.ts,
                )
                await conn.execute("INSERT INTO log VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)
                await conn.execute(
                    "INSERT INTO log_dedupe (conversation_id, seq, kind, sender_id, client_id,"
                    " body, target_seq, ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    row,
                )
            await self._bus.publish(conversation_channel(cid), event_frame(event))
        return AppendResult(event, duplicate=False)

    async def read(self, conversation_id: str, after_seq: int, limit: int) -> LogRange:
        head = await self._db.fetchone(
            "SELECT trimmed_to FROM log_heads WHERE conversation_id = ?", (conversation_id,)
        )
        trimmed_to = int(head["trimmed_to"]) if head else 0
        rows = await self._db.fetchall(
            "SELECT seq, kind, sender_id, client_id, body, target_seq, ts FROM log"
            " WHERE conversation_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (conversation_id, after_seq, limit),
        )
        return LogRange(
            tuple(_event(conversation_id, r) for r in rows), complete=after_seq >= trimmed_to
        )

    async def last_seq(self, conversation_id: str) -> int:
        head = await self._db.fetchone(
            "SELECT last_seq FROM log_heads WHERE conversation_id = ?", (conversation_id,)
        )
        return int(head["last_seq"]) if head else 0

    async def trim(self, conversation_id: str, keep_after_seq: int) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                "DELETE FROM log WHERE conversation_id = ? AND seq <= ?",
                (conversation_id, keep_after_seq),
            )
            await conn.execute(
                "UPDATE log_heads SET trimmed_to = MAX(trimmed_to, ?) WHERE conversation_id = ?",
                (keep_after_seq, conversation_id),
            )

    async def backlog(self) -> list[str]:
        rows = await self._db.fetchall(
            "SELECT conversation_id FROM log_heads WHERE last_seq > trimmed_to"
            " ORDER BY conversation_id"
        )
        return [r["conversation_id"] for r in rows]
