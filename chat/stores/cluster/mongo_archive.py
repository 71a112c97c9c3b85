"""The message archive in MongoDB, written only by the persistence worker.

Collections: `messages` (messages with edits and deletes applied, for history, search and unread
counts), `events` (every edit and delete as appended, and each changed message as it was sent)
and `watermarks` (`_id` = conversation, `seq` = highest seq applied).

Exact replay of ranges the log no longer holds (`events`, `event`) reads both: a message no edit
or delete ever touched (`changed_by_seq` 0) is its own event as sent, body included, so it is
stored once, in `messages`; before a change is applied to a message, the message as sent is
copied to `events` (from the batch when it is in it, else read back from `messages` while still
unchanged), so a changed message is replayed from there. Hence a batch job of messages only is
one insert (half the round trips and half the storage of keeping every message in both), and a
reader that reads `messages` before `events` misses nothing: a message it saw changed was
copied to `events` before the change. Archives written before this keep every event in
`events`; replay prefers that copy, so they read back the same.

Idempotence, which lets a failed or concurrent job simply run again:
- events and messages are keyed by `_id = "<cid>:<seq>"` and inserted unordered; a duplicate-key
  error means the document is already there, so re-applying an event changes nothing;
- an edit only applies while the message's `changed_by_seq` is below the edit's seq and it is
  not deleted, so a replayed older edit never overwrites a later one; a delete always applies;
- the watermark moves with `$max`, after the events are written: it never claims more than is
  stored, and never moves back.

Watermarks are not written per batch job: the worker records its progress in the log's head
(chat/stores/cluster/redis_log.py, `archived`), and the periodic sweep copies it here
(`record_watermarks`). So a job costs one insert (a batch with edits or deletes: a `find` of the
changed messages it does not hold, a second insert and one update per change), and a
watermark here is a lower bound that lags (by up to a sweep interval once its conversation is
fully archived; not copied at all while it is still being archived). What needs the exact
extent of the archive, restoring a lost log head, asks `floor`, which also looks at the
highest archived event.

Write shapes, chosen for MongoDB-compatible servers as well as MongoDB: new documents go in
`insert_many` (no per-document query), and each update that may match an existing document
goes in a command of its own. FerretDB v1.24 keeps one backend connection per *matching*
statement of an `update` command until the command ends, so a batch re-applied after an outage
(every statement matching) deadlocked its connection pool for good once a command held more
statements than the pool has connections (tests/cluster/test_mongo_archive.py reproduces it).
The sweep's watermark writes, which always match once they exist, are therefore one
`bulk_write` on MongoDB and one command each on FerretDB (told apart by `buildInfo`).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from pymongo import ASCENDING, DESCENDING, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from chat.domain.models import Event, EventKind, Message
from chat.stores.cluster.mongo_conn import mongo_errors

Doc = dict[str, Any]
DUPLICATE_KEY = 11000
UPSERT_RACE_RETRIES = 3
"""Two concurrent upserts of the same new watermark can both try to insert; the loser gets a
duplicate-key error and, the write being idempotent, simply runs again."""


def _id(conversation_id: str, seq: int) -> str:
    return f"{conversation_id}:{seq}"


def _event_doc(ev: Event) -> Doc:
    return {
        "conversation_id": ev.conversation_id,
        "seq": ev.seq,
        "kind": ev.kind.value,
        "sender_id": ev.sender_id,
        "client_id": ev.client_id,
        "body": ev.body,
        "target_seq": ev.target_seq,
        "ts": ev.ts,
    }


def _event(d: Doc) -> Event:
    return Event.from_dict(d)


def _stored_event(ev: Event) -> Doc:
    return {"_id": _id(ev.conversation_id, ev.seq), **_event_doc(ev)}


def _sent_event(d: Doc) -> Event:
    """A `messages` document no change has touched (`changed_by_seq` 0), as the event it was
    sent as."""
    return Event(
        d["conversation_id"],
        d["seq"],
        EventKind.MESSAGE,
        d["sender_id"],
        d["client_id"],
        d["body"],
        None,
        d["ts"],
    )


def _message(d: Doc) -> Message:
    return Message(
        conversation_id=d["conversation_id"],
        seq=d["seq"],
        sender_id=d["sender_id"],
        client_id=d["client_id"],
        body=d["body"],
        ts=d["ts"],
        edited_ts=d.get("edited_ts"),
        deleted=bool(d.get("deleted", False)),
    )


def _new_message_doc(ev: Event) -> Doc:
    return {
        "_id": _id(ev.conversation_id, ev.seq),
        "conversation_id": ev.conversation_id,
        "seq": ev.seq,
        "sender_id": ev.sender_id,
        "client_id": ev.client_id,
        "body": ev.body,
        "ts": ev.ts,
        "edited_ts": None,
        "deleted": False,
        "changed_by_seq": 0,
    }


def _change_write(ev: Event) -> tuple[Doc, Doc]:
    """The filter and update of an edit or a delete."""
    target = _id(ev.conversation_id, ev.target_seq or 0)
    if ev.kind is EventKind.EDIT:
        return (
            {"_id": target, "changed_by_seq": {"$lt": ev.seq}, "deleted": False},
            {"$set": {"body": ev.body, "edited_ts": ev.ts, "changed_by_seq": ev.seq}},
        )
    # A delete wins whatever order concurrent jobs apply things in: nothing revives a message.
    return (
        {"_id": target},
        {
            "$set": {"body": "", "deleted": True, "edited_ts": ev.ts},
            "$max": {"changed_by_seq": ev.seq},
        },
    )


async def _events_of(cursor: Any, make: Callable[[Doc], Event]) -> AsyncIterator[Event]:
    async for d in cursor:
        yield make(d)


async def _insert_absent(collection: Any, docs: list[Doc]) -> None:
    """Inserts the documents whose `_id` is not there yet; the others are already applied."""
    if not docs:
        return
    try:
        await collection.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        codes = {e.get("code") for e in exc.details.get("writeErrors", [])}
        if codes != {DUPLICATE_KEY} or exc.details.get("writeConcernErrors"):
            raise


async def _upsert(collection: Any, filter_: Doc, update: Doc) -> None:
    for attempt in range(UPSERT_RACE_RETRIES + 1):
        try:
            await collection.update_one(filter_, update, upsert=True)
            return
        except DuplicateKeyError:
            if attempt == UPSERT_RACE_RETRIES:
                raise


class MongoArchive:
    def __init__(self, db: AsyncDatabase[Doc], *, bulk_updates: bool | None = None) -> None:
        """`bulk_updates`: None asks the server (MongoDB yes, FerretDB no); tests force it."""
        self._db = db
        self._bulk_updates = bulk_updates
        self._events = db.events
        self._messages = db.messages
        self._watermarks = db.watermarks

    async def apply(self, events: Sequence[Event]) -> None:
        if not events:
            return
        ordered = sorted(events, key=lambda e: (e.conversation_id, e.seq))
        sent = {(e.conversation_id, e.seq): e for e in ordered if e.kind is EventKind.MESSAGE}
        changes = [e for e in ordered if e.kind is not EventKind.MESSAGE]
        with mongo_errors():
            await _insert_absent(self._messages, [_new_message_doc(e) for e in sent.values()])
            if not changes:
                return
            # Each changed message as sent, into `events` before any change is applied: the
            # module's note says why that order keeps replay whole.
            originals = await self._as_sent(changes, sent)
            await _insert_absent(self._events, [_stored_event(e) for e in [*originals, *changes]])
            # In seq order, after the messages they change are in place.
            for filter_, update in (_change_write(e) for e in changes):
                await self._messages.update_one(filter_, update)

    async def _as_sent(
        self, changes: list[Event], sent: Mapping[tuple[str, int], Event]
    ) -> list[Event]:
        """The messages these edits and deletes target, as they were sent: from the batch, or
        from `messages` while unchanged (a changed one already has its copy in `events`)."""
        targets = {(e.conversation_id, e.target_seq or 0) for e in changes}
        found = [sent[t] for t in sorted(targets) if t in sent]
        elsewhere = [_id(cid, seq) for cid, seq in sorted(targets) if (cid, seq) not in sent]
        if elsewhere:
            cursor = self._messages.find({"_id": {"$in": elsewhere}, "changed_by_seq": 0})
            found.extend([_sent_event(d) async for d in cursor])
        return found

    async def record_watermarks(self, marks: Mapping[str, int]) -> None:
        """One unordered `bulk_write` on MongoDB; one command per conversation on FerretDB,
        which holds a backend connection per matching statement of a command (see the module's
        note). Either way idempotent (`$max`)."""
        highest = {cid: seq for cid, seq in marks.items() if seq > 0}
        if not highest:
            return
        with mongo_errors():
            await self._move_watermarks(highest)

    async def _move_watermarks(self, highest: dict[str, int]) -> None:
        if len(highest) > 1 and await self._bulk_updates_safe():
            writes = [
                UpdateOne({"_id": cid}, {"$max": {"seq": seq}}, upsert=True)
                for cid, seq in highest.items()
            ]
            for attempt in range(UPSERT_RACE_RETRIES + 1):
                try:
                    await self._watermarks.bulk_write(writes, ordered=False)
                    return
                except BulkWriteError as exc:
                    codes = {e.get("code") for e in exc.details.get("writeErrors", [])}
                    if codes != {DUPLICATE_KEY} or attempt == UPSERT_RACE_RETRIES:
                        raise
        for cid, seq in highest.items():
            await _upsert(self._watermarks, {"_id": cid}, {"$max": {"seq": seq}})

    async def _bulk_updates_safe(self) -> bool:
        """False on FerretDB (its `buildInfo` names its version), asked once per archive."""
        if self._bulk_updates is None:
            info = await self._db.command("buildInfo")
            self._bulk_updates = "ferretdbVersion" not in info
        return self._bulk_updates

    async def watermark(self, conversation_id: str) -> int:
        with mongo_errors():
            doc = await self._watermarks.find_one({"_id": conversation_id})
        return int(doc["seq"]) if doc else 0

    async def floor(self, conversation_id: str) -> int:
        """The highest seq the archive holds for the conversation: where a log head that Redis
        lost restarts. The watermark lags (see the module's note), so the newest archived event
        counts too (an index lookup, on this rare path only)."""
        newest = {"conversation_id": conversation_id}
        with mongo_errors():
            mark = await self._watermarks.find_one({"_id": conversation_id})
            event = await self._events.find_one(newest, sort=[("seq", DESCENDING)])
            message = await self._messages.find_one(newest, sort=[("seq", DESCENDING)])
        return max(int(d["seq"]) if d else 0 for d in (mark, event, message))

    async def watermarks(self, conversation_ids: Sequence[str]) -> dict[str, int]:
        """One `find` for a whole batch job's conversations (the job carries them from there
        instead of re-reading a watermark per batch)."""
        ids = list(conversation_ids)
        with mongo_errors():
            docs = [d async for d in self._watermarks.find({"_id": {"$in": ids}})]
        found = {str(d["_id"]): int(d["seq"]) for d in docs}
        return {cid: found.get(cid, 0) for cid in ids}

    async def events(self, conversation_id: str, after_seq: int, limit: int) -> list[Event]:
        """The first `limit` events after `after_seq`: every seq is in one of the two sources
        (or both: `events`' copy wins), so the first `limit` of each cover it. `messages`
        first (the module's note)."""
        after = {"conversation_id": conversation_id, "seq": {"$gt": after_seq}}
        with mongo_errors():
            unchanged = (
                self._messages.find({**after, "changed_by_seq": 0})
                .sort("seq", ASCENDING)
                .limit(limit)
            )
            by_seq = {e.seq: e async for e in _events_of(unchanged, _sent_event)}
            logged = self._events.find(after).sort("seq", ASCENDING).limit(limit)
            by_seq.update({e.seq: e async for e in _events_of(logged, _event)})
        return [by_seq[seq] for seq in sorted(by_seq)[:limit]]

    async def event(self, conversation_id: str, seq: int) -> Event | None:
        """One archived event (a duplicate send whose original left the hot log)."""
        key = _id(conversation_id, seq)
        with mongo_errors():
            doc = await self._messages.find_one({"_id": key, "changed_by_seq": 0})
            if doc is not None:
                return _sent_event(doc)
            doc = await self._events.find_one({"_id": key})
        return _event(doc) if doc else None

    async def history(
        self, conversation_id: str, *, before: int | None, after: int | None, limit: int
    ) -> list[Message]:
        with mongo_errors():
            if after is not None:
                cursor = (
                    self._messages.find({"conversation_id": conversation_id, "seq": {"$gt": after}})
                    .sort("seq", ASCENDING)
                    .limit(limit)
                )
                return [_message(d) async for d in cursor]
            query: Doc = {"conversation_id": conversation_id}
            if before is not None:
                query["seq"] = {"$lt": before}
            cursor = self._messages.find(query).sort("seq", DESCENDING).limit(limit)
            newest_first = [_message(d) async for d in cursor]
        return newest_first[::-1]

    async def get(self, conversation_id: str, seq: int) -> Message | None:
        with mongo_errors():
            doc = await self._messages.find_one({"_id": _id(conversation_id, seq)})
        return _message(doc) if doc else None

    async def search(self, conversation_ids: Sequence[str], text: str, limit: int) -> list[Message]:
        if not conversation_ids:
            return []
        query = {
            "conversation_id": {"$in": list(conversation_ids)},
            "deleted": False,
            # Escaped: the user's text is matched literally, never as a pattern. The `i`
            # option folds case the Unicode way (PCRE in UTF mode on MongoDB, Go's regexp on
            # FerretDB), as the embedded store does (tests/contract/test_unicode_search.py).
            "body": {"$regex": re.escape(text), "$options": "i"},
        }
        with mongo_errors():
            cursor = (
                self._messages.find(query)
                .sort([("ts", DESCENDING), ("seq", DESCENDING)])
                .limit(limit)
            )
            return [_message(d) async for d in cursor]

    async def count_from_others(
        self, conversation_id: str, user_id: str, after_seq: int, up_to_seq: int
    ) -> int:
        with mongo_errors():
            return await self._messages.count_documents(
                {
                    "conversation_id": conversation_id,
                    "seq": {"$gt": after_seq, "$lte": up_to_seq},
                    "sender_id": {"$ne": user_id},
                    "deleted": False,
                }
            )

    async def delete_older_than(self, ts: int) -> int:
        with mongo_errors():
            result = await self._messages.delete_many({"ts": {"$lt": ts}})
            # The raw events go too: retention means the text is gone, not just hidden.
            await self._events.delete_many({"ts": {"$lt": ts}})
        return int(result.deleted_count)
