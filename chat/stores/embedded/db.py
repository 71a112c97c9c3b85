"""One SQLite file behind aiosqlite, set up for durability: WAL with synchronous=FULL, so a
committed transaction is fsynced before the caller acks anyone."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from chat.stores.embedded.schema import SCHEMA

T = TypeVar("T")


class Database:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        # aiosqlite runs every statement on one thread; the lock keeps a transaction's
        # statements together when several tasks write at once.
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> Database:
        conn = await aiosqlite.connect(path, isolation_level=None)
        conn.row_factory = aiosqlite.Row
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=FULL",
            "PRAGMA foreign_keys=ON",
            "PRAGMA busy_timeout=5000",
        ):
            await conn.execute(pragma)
        await conn.executescript(SCHEMA)
        return cls(conn)

    async def close(self) -> None:
        await self._conn.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            await self._conn.execute("COMMIT")

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` with the raw sqlite3 connection on aiosqlite's thread, in one hop: a batch
        of statements without a thread round trip per statement. (aiosqlite's `_execute` is its
        own queueing primitive; the version is pinned.)"""
        async with self._lock:
            raw = self._conn._connection
            if raw is None:
                raise ValueError("database closed")
            result: T = await self._conn._execute(fn, raw)  # type: ignore[no-untyped-call]
            return result

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[aiosqlite.Row]:
        async with self._lock:
            cursor = await self._conn.execute(sql, tuple(params))
            rows = await cursor.fetchall()
            await cursor.close()
            return list(rows)

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> aiosqlite.Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        """One statement in its own transaction; returns the number of rows changed."""
        async with self.transaction() as conn:
            cursor = await conn.execute(sql, tuple(params))
            return cursor.rowcount
