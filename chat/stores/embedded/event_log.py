"""The hot log in SQLite, with group commit.

Sends that arrive while a commit is in flight wait in a queue; the single writer then takes
them all and, in one transaction, dedupes each, assigns the next seq and inserts it, commits
(fsynced: synchronous=FULL), and only then publishes the frames in seq order and answers the
callers. Durability per ack is unchanged; the cost of an fsync is shared by every send that
came in meanwhile, so throughput grows with load instead of being one send per fsync.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import sqlite3
from collections.abc import Sequence
from dataclasses import replace
from functools import partial

import aiosqlite

from chat.domain.channels import conversation_channel
from chat.domain.clock import Clock, now_ms
from chat.domain.frames import event_frame
from chat.domain.models import AppendResult, Event, EventDraft, EventKind, LogRange, RateCharge
from chat.domain.persistence import ProgressInTheArchive
from chat.domain.ports import Bus, RateLimiter
from chat.stores.embedded.db import Database
from chat.stores.embedded.ratelimit import MemoryRateLimiter

MAX_BATCH = 256  # sends per transaction; bounds the time one commit holds the writer

_EVENT_COLUMNS = "seq, kind, sender_id, client_id, body, target_seq, ts"


def _event(conversation_id: str, row: aiosqlite.Row | sqlite3.Row | tuple[object, ...]) -> Event:
    seq, kind, sender_id, client_id, body, target_seq, ts = tuple(row)
    return Event(
        conversation_id=conversation_id,
        seq=int(seq),
        kind=EventKind(kind),
        sender_id=str(sender_id),
        client_id=str(client_id),
        body=str(body),
        target_seq=None if target_seq is None else int(target_seq),
        ts=int(ts),
    )


def _write_batch(drafts: list[EventDraft], now: int, raw: sqlite3.Connection) -> list[AppendResult]:
    """One transaction for the whole batch; runs on the database thread."""
    results: list[AppendResult] = []
    cur = raw.cursor()
    cur.execute("BEGIN IMMEDIATE")
    try:
        for d in drafts:
            cid = d.conversation_id
            seen = cur.execute(
                f"SELECT {_EVENT_COLUMNS} FROM log_dedupe"
                " WHERE conversation_id = ? AND sender_id = ? AND client_id = ?",
                (cid, d.sender_id, d.client_id),
            ).fetchone()
            if seen is not None:
                results.append(AppendResult(_event(cid, seen), duplicate=True))
                continue
            cur.execute(
                "INSERT INTO log_heads (conversation_id, last_seq) VALUES (?, 1)"
                " ON CONFLICT (conversation_id) DO UPDATE SET last_seq = last_seq + 1",
                (cid,),
            )
            (seq,) = cur.execute(
                "SELECT last_seq FROM log_heads WHERE conversation_id = ?", (cid,)
            ).fetchone()
            event = Event(
                cid, int(seq), d.kind, d.sender_id, d.client_id, d.body, d.target_seq, now
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
            cur.execute("INSERT INTO log VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)
            cur.execute(
                "INSERT INTO log_dedupe (conversation_id, seq, kind, sender_id, client_id,"
                " body, target_seq, ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            results.append(AppendResult(event, duplicate=False))
        cur.execute("COMMIT")
    except BaseException:
        cur.execute("ROLLBACK")
        raise
    finally:
        cur.close()
    return results


def _read_ranges(
    ranges: list[tuple[str, int]], limit: int, raw: sqlite3.Connection
) -> list[LogRange]:
    """Runs on the database thread."""
    cur = raw.cursor()
    try:
        out = []
        for cid, after_seq in ranges:
            head = cur.execute(
                "SELECT trimmed_to FROM log_heads WHERE conversation_id = ?", (cid,)
            ).fetchone()
            trimmed_to = int(head[0]) if head else 0
            rows = cur.execute(
                f"SELECT {_EVENT_COLUMNS} FROM log"
                " WHERE conversation_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (cid, after_seq, limit),
            ).fetchall()
            events = tuple(_event(cid, r) for r in rows)
            out.append(LogRange(events, complete=after_seq >= trimmed_to))
        return out
    finally:
        cur.close()


class SqliteEventLog(ProgressInTheArchive):
    """The archive's watermarks are exact here (moved in its apply transaction): no progress
    record of its own (`ProgressInTheArchive`)."""

    def __init__(
        self, db: Database, bus: Bus, clock: Clock, limiter: RateLimiter | None = None
    ) -> None:
        self._db = db
        self._bus = bus
        self._clock = clock
        # The buckets a send's `charge` is taken from: the process's `RateLimiter` (the same
        # one the domain asks directly, so both see one bucket per key).
        self._limiter = limiter if limiter is not None else MemoryRateLimiter(clock)
        # The persistence signal (chat/domain/persistence.py), in memory: one process, one
        # event loop, so each step below is atomic. A restart forgets it; the sweep finds
        # every conversation whose archive lags its log and marks it again.
        self._dirty: dict[str, None] = {}  # insertion order: oldest first
        self._scheduled: str | None = None
        self._waiting: list[tuple[EventDraft, asyncio.Future[AppendResult]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def append(self, draft: EventDraft, *, charge: RateCharge | None = None) -> AppendResult:
        if charge is not None:
            # Before the draft joins the batch, so before its dedupe; one event loop and an
            # in-memory bucket: nothing runs between the charge and the queueing. A refused
            # draft is never queued: nothing written, no seq used.
            wait = await self._limiter.allow(charge.key, charge.rate_per_s, charge.burst)
            if wait > 0:
                raise charge.refused(wait)
        future: asyncio.Future[AppendResult] = asyncio.get_running_loop().create_future()
        self._waiting.append((draft, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_waiting())
        return await future

    async def _write_waiting(self) -> None:
        """The only writer: batches are committed and published strictly one after another, so
        the bus sees every conversation's events in seq order."""
        while self._waiting:
            batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
            drafts = [d for d, _ in batch]
            now = now_ms(self._clock)
            try:
                results = await self._db.run(partial(_write_batch, drafts, now))
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for result in results:
                if not result.duplicate:
                    event = result.event
                    await self._bus.publish(
                        conversation_channel(event.conversation_id), event_frame(event)
                    )
            results = [self._signal(r) for r in results]
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def read(self, conversation_id: str, after_seq: int, limit: int) -> LogRange:
        return (await self.read_many([(conversation_id, after_seq)], limit))[0]

    async def read_many(self, ranges: Sequence[tuple[str, int]], limit: int) -> list[LogRange]:
        """Every range in one hop to the database thread (a batch job reads all its
        conversations at once)."""
        if not ranges:
            return []
        return await self._db.run(partial(_read_ranges, list(ranges), limit))

    async def start(self, conversation_id: str) -> None:
        """Nothing to do: a conversation without a head row is at seq 0 (SQLite never loses
        the head while keeping the archive)."""

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

    async def backlog(self) -> dict[str, int]:
        rows = await self._db.fetchall(
            "SELECT conversation_id, last_seq FROM log_heads WHERE last_seq > trimmed_to"
            " ORDER BY conversation_id"
        )
        return {r["conversation_id"]: int(r["last_seq"]) for r in rows}

    async def settle(self) -> list[str]:
        return []  # appends commit in their own step: nothing is ever left unannounced

    def _signal(self, result: AppendResult) -> AppendResult:
        """Mark a new event's conversation dirty; the append that makes it dirty and finds no
        job scheduled claims the schedule and tells its caller to queue one. Already dirty:
        claimed by whatever made it so, as in the cluster's log (redis_log.py, "The
        persistence signal"), whose contract this keeps."""
        if result.duplicate or result.event.conversation_id in self._dirty:
            return result
        self._dirty[result.event.conversation_id] = None
        if self._scheduled is not None:
            return result
        self._scheduled = secrets.token_urlsafe(12)
        return replace(result, persist_job=self._scheduled)

    async def take_dirty(self, limit: int) -> list[str]:
        taken = list(itertools.islice(self._dirty, limit))
        for cid in taken:
            del self._dirty[cid]
        return taken

    async def mark_dirty(self, conversation_ids: Sequence[str]) -> None:
        for cid in conversation_ids:
            self._dirty.setdefault(cid, None)

    async def claim_persist(self, token: str, *, take_over: bool) -> bool:
        if self._scheduled is not None and not take_over:
            return False
        self._scheduled = token
        return True

    async def persist_continue(self, token: str) -> bool:
        if self._scheduled is not None and self._scheduled != token:
            return False
        self._scheduled = token if self._dirty else None
        return bool(self._dirty)

    async def release_persist(self, token: str) -> None:
        if self._scheduled == token:
            self._scheduled = None
