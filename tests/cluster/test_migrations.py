"""Migrations apply once, record themselves, and are safe to run concurrently."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
from pymongo import AsyncMongoClient

from chat.config import Settings
from chat.stores.cluster.migrations import migrate, migrate_postgres, postgres_migrations
from tests.servers import PostgresServer


async def _fresh_database(server: PostgresServer) -> str:
    name = f"m_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server.dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return server.dsn_for(name)


async def test_migrate_is_idempotent_and_recorded(
    postgres_server: PostgresServer, mongodb_uri: str, fresh_mongodb_database: str
) -> None:
    settings = Settings(
        postgres_dsn=await _fresh_database(postgres_server),
        mongodb_uri=mongodb_uri,
        mongodb_database=fresh_mongodb_database,
    )
    versions = [v for v, _ in postgres_migrations()]
    first = await migrate(settings)
    assert first == [f"postgres:{v}" for v in versions] + ["mongo:0001_indexes"]
    assert await migrate(settings) == []
    conn = await asyncpg.connect(settings.postgres_dsn)
    try:
        recorded = [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")]
        assert sorted(recorded) == versions
    finally:
        await conn.close()
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongodb_uri)
    try:
        db = client[fresh_mongodb_database]
        indexes = {
            tuple(spec["key"].items()): spec
            for spec in await (await db.events.list_indexes()).to_list()
        }
        assert indexes[(("conversation_id", 1), ("seq", 1))].get("unique") is True
    finally:
        await client.close()


async def test_concurrent_migrators_apply_each_version_once(
    postgres_server: PostgresServer,
) -> None:
    dsn = await _fresh_database(postgres_server)
    results = await asyncio.gather(*(migrate_postgres(dsn) for _ in range(4)))
    applied = [v for result in results for v in result]
    assert sorted(applied) == sorted(f"postgres:{v}" for v, _ in postgres_migrations())
