"""MongoDB migrations: versioned index sets, applied in order and recorded in
`schema_migrations`. `create_index` is a no-op for an identical existing index, so a migration
interrupted before its record is written is simply run again."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from chat.stores.cluster.mongo_conn import mongo_errors

Db = AsyncDatabase[dict[str, Any]]


async def _0001_indexes(db: Db) -> None:
    # The archive's identity: one event and one message per (conversation, seq). Documents also
    # use "<cid>:<seq>" as _id, so upserts are keyed without a race; this index is what makes a
    # duplicate impossible whatever the _id.
    for name in ("events", "messages"):
        await db[name].create_index(
            [("conversation_id", ASCENDING), ("seq", ASCENDING)], unique=True
        )
    # Search and the newest-first ordering of its results.
    await db.messages.create_index([("conversation_id", ASCENDING), ("ts", DESCENDING)])
    # Retention deletes by age across conversations.
    await db.messages.create_index([("ts", ASCENDING)])
    await db.events.create_index([("ts", ASCENDING)])


MIGRATIONS: list[tuple[str, Callable[[Db], Awaitable[None]]]] = [
    ("0001_indexes", _0001_indexes),
]


async def migrate(db: Db) -> list[str]:
    applied = []
    with mongo_errors():
        done = {d["_id"] async for d in db.schema_migrations.find({}, {"_id": 1})}
        for version, apply in MIGRATIONS:
            if version in done:
                continue
            await apply(db)
            try:
                await db.schema_migrations.insert_one({"_id": version})
            except DuplicateKeyError:
                continue  # a concurrent migrator recorded it first
            applied.append(version)
    return applied
