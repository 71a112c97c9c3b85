"""Schema migrations for the cluster stores: versioned SQL files for PostgreSQL, versioned index
sets for MongoDB. Both are idempotent and recorded where they apply, so running `migrate` again
(a retried migration Job, every pod at start-up) changes nothing.

- PostgreSQL: `postgres/NNNN_name.sql`, each applied in its own transaction together with its
  row in `schema_migrations`; a session-level advisory lock makes concurrent migrators (every pod
  at start-up, a migration Job) run one after the other, the second finding nothing to do.
- MongoDB: `mongo.MIGRATIONS`, recorded in the database's own `schema_migrations` collection
  (the record lives next to what it describes: a restored MongoDB re-runs its own migrations).
"""

from __future__ import annotations

from importlib import resources

import asyncpg  # type: ignore[import-untyped]  # no stubs; see docs/cluster.md

from chat.config import Settings
from chat.stores.cluster.migrations import mongo
from chat.stores.cluster.mongo_conn import connect_mongo
from chat.stores.cluster.postgres_pool import postgres_errors

_LOCK_KEY = 0x636861745F6D6967  # "chat_mig": any constant, the same for every migrator


def postgres_migrations() -> list[tuple[str, str]]:
    """(version, sql) in order, e.g. ("0001_initial", "CREATE TABLE ...")."""
    folder = resources.files(__package__).joinpath("postgres")
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [(f.name.removesuffix(".sql"), f.read_text(encoding="utf-8")) for f in files]


async def migrate_postgres(dsn: str) -> list[str]:
    """Apply pending PostgreSQL migrations; returns the versions applied by this call."""
    applied: list[str] = []
    with postgres_errors(dsn):
        conn = await asyncpg.connect(dsn, timeout=10)
    try:
        with postgres_errors(dsn):
            # Held until the connection closes, even if a migration fails half-way.
            await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version text PRIMARY KEY,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            for version, sql in postgres_migrations():
                async with conn.transaction():
                    done = await conn.fetchval(
                        "SELECT 1 FROM schema_migrations WHERE version = $1", version
                    )
                    if done:
                        continue
                    await conn.execute(sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version) VALUES ($1)", version
                    )
                applied.append(f"postgres:{version}")
    finally:
        await conn.close()
    return applied


async def migrate_mongo(uri: str, database: str) -> list[str]:
    client = await connect_mongo(uri)
    try:
        return [f"mongo:{v}" for v in await mongo.migrate(client[database])]
    finally:
        await client.close()


async def migrate(settings: Settings) -> list[str]:
    """Bring PostgreSQL and MongoDB to the current schema; returns what was applied now."""
    applied = await migrate_postgres(settings.postgres_dsn)
    applied += await migrate_mongo(settings.mongodb_uri, settings.mongodb_database)
    return applied
