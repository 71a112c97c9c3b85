"""The archive on FerretDB: idempotent, order-safe, and retriable through an outage."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient, monitoring

from chat.domain.errors import Unavailable
from chat.domain.frames import event_dict
from chat.domain.models import Event, EventKind
from chat.stores.cluster.migrations import migrate_mongo
from chat.stores.cluster.mongo_archive import MongoArchive
from chat.stores.cluster.mongo_conn import make_client
from tests.servers import FerretServer, PostgresServer, ferretdb_on_postgres_proc


def _ev(cid: str, seq: int, kind: EventKind, body: str, target: int | None = None) -> Event:
    return Event(cid, seq, kind, "u1", f"m{seq}", body, target, 1_000 + seq)


@pytest.fixture
async def archive(mongodb_uri: str, fresh_mongodb_database: str) -> AsyncIterator[MongoArchive]:
    await migrate_mongo(mongodb_uri, fresh_mongodb_database)
    client = make_client(mongodb_uri + "?serverSelectionTimeoutMS=1000")
    try:
        yield MongoArchive(client[fresh_mongodb_database])
    finally:
        await client.close()


async def test_reapplying_in_any_split_changes_nothing(archive: MongoArchive) -> None:
    cid = f"c_{uuid.uuid4().hex}"
    events = [
        _ev(cid, 1, EventKind.MESSAGE, "hello"),
        _ev(cid, 2, EventKind.EDIT, "hello, edited", 1),
        _ev(cid, 3, EventKind.EDIT, "final", 1),
        _ev(cid, 4, EventKind.MESSAGE, "second"),
        _ev(cid, 5, EventKind.DELETE, "", 4),
    ]
    await archive.apply(events)
    # A retried job and a late, overlapping one: the older edit must not win.
    await archive.apply(events[:2])
    await archive.apply(events)
    history = await archive.history(cid, before=None, after=None, limit=10)
    assert [(m.seq, m.body, m.deleted) for m in history] == [(1, "final", False), (4, "", True)]
    assert history[0].edited_ts == 1_003
    # Applying writes no watermark (the worker's progress is in the log; the sweep copies it).
    assert await archive.watermark(cid) == 0
    assert await archive.floor(cid) == 5  # what a lost log head restarts at
    await archive.record_watermarks({cid: 5})
    assert await archive.watermark(cid) == 5
    assert await archive.events(cid, 0, 10) == events
    assert await archive.count_from_others(cid, "someone-else", 0, 5) == 1
    assert await archive.count_from_others(cid, "someone-else", 0, 3) == 1
    assert await archive.count_from_others(cid, "someone-else", 1, 5) == 0
    assert [m.seq for m in await archive.search([cid], "FIN", 10)] == [1]
    assert await archive.search([cid], "f.nal", 10) == []  # literal, not a pattern


async def test_outage_raises_retriable_errors_then_catches_up(
    private_ferretdb: FerretServer,
) -> None:
    cid = f"c_{uuid.uuid4().hex}"
    uri = private_ferretdb.uri + "?serverSelectionTimeoutMS=1000"
    await migrate_mongo(uri, "chat")
    client = make_client(uri)
    archive = MongoArchive(client["chat"])
    try:
        await archive.apply([_ev(cid, 1, EventKind.MESSAGE, "before")])
        private_ferretdb.stop()
        with pytest.raises(Unavailable) as raised:
            await archive.apply([_ev(cid, 2, EventKind.MESSAGE, "during")])
        assert raised.value.code == "dependency_unavailable"
        assert "MongoDB" in raised.value.message
        with pytest.raises(Unavailable):
            await archive.watermark(cid)
        # The worker's retry after the outage: same call, now it lands, and nothing is lost.
        private_ferretdb.start()
        await archive.apply([_ev(cid, 2, EventKind.MESSAGE, "during")])
        assert await archive.floor(cid) == 2
        assert [e.seq for e in await archive.events(cid, 0, 10)] == [1, 2]
    finally:
        await client.close()


@pytest.fixture
def ferretdb_small_pool(postgres_server: PostgresServer, tmp_path: Path) -> Iterator[str]:
    """FerretDB on PostgreSQL with a pool of 4 backend connections (its default on a 2-core
    machine). Returns its URI."""
    with ferretdb_on_postgres_proc(postgres_server, tmp_path / "ferretdb", 4) as proc:
        yield f"mongodb://127.0.0.1:{proc.port}/"


async def test_reapplying_a_large_batch_does_not_exhaust_the_servers_pool(
    ferretdb_small_pool: str,
) -> None:
    """The retry after an outage re-applies a whole batch, every write matching a stored
    document. FerretDB v1.24 holds a backend connection per matching statement of an `update`
    command, so the upsert-per-event batch this archive used to send hung the server for good
    (the socket timeout below would fire)."""
    cid = f"c_{uuid.uuid4().hex}"
    db = f"chat_{uuid.uuid4().hex[:8]}"
    await migrate_mongo(ferretdb_small_pool, db)
    client = make_client(ferretdb_small_pool + "?socketTimeoutMS=10000")
    archive = MongoArchive(client[db])
    batch = [_ev(cid, seq, EventKind.MESSAGE, f"m{seq}") for seq in range(1, 41)]
    batch += [_ev(cid, 40 + n, EventKind.DELETE, "", n) for n in range(1, 11)]
    try:
        await archive.apply(batch)
        await archive.apply(batch)  # the retry: everything already there
        await archive.apply(batch[5:30])  # an overlapping late job
        history = await archive.history(cid, before=None, after=None, limit=100)
        assert [m.seq for m in history] == list(range(1, 41))
        assert [m.seq for m in history if m.deleted] == list(range(1, 11))
        assert await archive.floor(cid) == 50
        assert len(await archive.events(cid, 0, 100)) == 50
    finally:
        await client.close()


async def test_a_batchs_watermarks_in_one_bulk_write_where_the_server_allows(
    archive: MongoArchive, mongodb_uri: str, fresh_mongodb_database: str
) -> None:
    """FerretDB is recognised (its watermarks go one command each); the bulk path MongoDB
    gets is idempotent and never moves a watermark back (forced here, with few statements)."""
    assert await archive._bulk_updates_safe() is False
    client = make_client(mongodb_uri)
    bulk = MongoArchive(client[fresh_mongodb_database], bulk_updates=True)
    a, b, c = (f"c_{uuid.uuid4().hex}" for _ in range(3))
    try:
        await bulk.apply([_ev(a, 1, EventKind.MESSAGE, "x"), _ev(b, 1, EventKind.MESSAGE, "y")])
        await bulk.record_watermarks({a: 1, b: 1})
        later = [_ev(cid, s, EventKind.MESSAGE, "z") for cid in (a, b, c) for s in (2, 3)]
        await bulk.apply(later)
        await bulk.record_watermarks({a: 3, b: 3, c: 3})
        await bulk.record_watermarks({a: 2, c: 2})  # a late, older record
        assert await bulk.watermarks([a, b, c]) == {a: 3, b: 3, c: 3}
        assert [e.seq for e in await bulk.events(a, 0, 10)] == [1, 2, 3]
    finally:
        await client.close()


class _Commands(monitoring.CommandListener):
    """The commands a client sends, by name (the drivers' own monitoring left out)."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name not in {"hello", "ismaster", "ping", "endSessions", "buildInfo"}:
            self.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None: ...

    def failed(self, event: monitoring.CommandFailedEvent) -> None: ...


async def test_a_batch_of_messages_is_one_insert_and_each_message_is_stored_once(
    mongodb_uri: str, fresh_mongodb_database: str
) -> None:
    await migrate_mongo(mongodb_uri, fresh_mongodb_database)
    commands = _Commands()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongodb_uri, event_listeners=[commands]
    )
    try:
        db = client[fresh_mongodb_database]
        archive = MongoArchive(db)
        cid = f"c_{uuid.uuid4().hex}"
        sent = [_ev(cid, seq, EventKind.MESSAGE, f"body {seq}") for seq in range(1, 21)]
        await archive.apply(sent)
        assert commands.names == ["insert"]  # two before: `events` held every message too
        assert await db.events.count_documents({"conversation_id": cid}) == 0
        assert await db.messages.count_documents({"conversation_id": cid}) == 20
        # Replayed exactly, from `messages` alone; paged the same.
        assert await archive.events(cid, 0, 100) == sent
        assert await archive.events(cid, 5, 3) == sent[5:8]
        assert await archive.event(cid, 7) == sent[6]
    finally:
        await client.close()


async def test_replay_stays_exact_when_changes_come_in_later_batches(
    archive: MongoArchive,
) -> None:
    """The changed messages were archived by an earlier job: each is copied to `events`, as
    sent, before its change is applied, so replay still gives its body as sent."""
    cid = f"c_{uuid.uuid4().hex}"
    first = [_ev(cid, seq, EventKind.MESSAGE, f"sent {seq}") for seq in (1, 2, 3)]
    second = [_ev(cid, 4, EventKind.EDIT, "edited once", 1), _ev(cid, 5, EventKind.DELETE, "", 2)]
    third = [_ev(cid, 6, EventKind.EDIT, "edited twice", 1), _ev(cid, 7, EventKind.MESSAGE, "new")]
    for batch in (first, second, third, second):  # and a retried job, late
        await archive.apply(batch)
    everything = [*first, *second, *third]
    assert await archive.events(cid, 0, 100) == everything
    assert await archive.events(cid, 1, 2) == everything[1:3]
    assert await archive.event(cid, 1) == first[0]  # as sent, not as edited
    assert await archive.event(cid, 2) == first[1]  # as sent, not as deleted
    assert await archive.event(cid, 6) == third[0]
    history = await archive.history(cid, before=None, after=None, limit=10)
    assert [(m.seq, m.body, m.deleted) for m in history] == [
        (1, "edited twice", False),
        (2, "", True),
        (3, "sent 3", False),
        (7, "new", False),
    ]
    assert await archive.floor(cid) == 7


async def test_an_archive_written_by_the_previous_release_replays_the_same(
    mongodb_uri: str, fresh_mongodb_database: str
) -> None:
    """Before this release `events` held every message too: replay takes each seq once."""
    await migrate_mongo(mongodb_uri, fresh_mongodb_database)
    client = make_client(mongodb_uri)
    try:
        db = client[fresh_mongodb_database]
        archive = MongoArchive(db)
        cid = f"c_{uuid.uuid4().hex}"
        old = [_ev(cid, 1, EventKind.MESSAGE, "old one"), _ev(cid, 2, EventKind.MESSAGE, "old two")]
        await archive.apply(old)
        # What the previous release's apply also wrote.
        await db.events.insert_many(
            [
                {"_id": f"{cid}:{e.seq}", **{k: v for k, v in event_dict(e).items() if k != "type"}}
                for e in old
            ]
        )
        edit = _ev(cid, 3, EventKind.EDIT, "old one, edited", 1)
        await archive.apply([edit])
        assert await archive.events(cid, 0, 10) == [*old, edit]
        assert await archive.event(cid, 1) == old[0]
    finally:
        await client.close()
