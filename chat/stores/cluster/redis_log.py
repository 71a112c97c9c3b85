"""The hot log of each conversation in Redis: a stream of event frames plus a head hash.

Keys (built by redis_keys.py; shown with the default prefix `chat:`), all in the
conversation's Redis Cluster slot (`{cid}` hash tag):
- `chat:log:{cid}:head`   hash: `seq` (last assigned), `committed` (events <= it may be read
                          and published; below `seq` only while replicas are awaited),
                          `trimmed` (events <= it are gone), `restored` (set when the head was
                          rebuilt from the archive), `archived` (the persistence worker's
                          progress: every event <= it is in the archive; see `mark_archived`),
                          `dirty` ("1" while the conversation is in the dirty set: set by the
                          append that adds it, cleared by the take that pops it), `layout`
                          ("2": dedupe is in this hash only), and the dedupe fields
                          `sender_id NUL client_id` -> seq (the NUL keeps them apart)
- `chat:log:{cid}:stream` stream; entry id `<seq>-0`, field `f` = the exact event frame bytes,
                          field `a` = the id of the `append` call that wrote it
- `chat:log:{cid}:dedupe` hash `sender_id NUL client_id` -> seq, as earlier releases kept
                          dedupe: still read (and expired) for a head without `layout`, never
                          written; once it is gone the trim sets `layout` 2
- `chat:log:{cid}:dedupe_ts` sorted set of the same fields scored by their event's ts, to
                          expire old ones; written when the event is trimmed (`TRIM`),
                          not by the append
- `chat:log:backlog`      set of conversation ids that ever had a head (see `backlog`)
- `chat:persist:{dirty}`  sorted set: conversations with events to archive, scored by the ms
                          ts of the append that made them dirty (`ZADD NX`: the oldest)
- `chat:persist:{dirty}:scheduled` string: the token of the scheduled batch job (TTL 300 s)
- `chat:bucket:{send:<uid>}` the sender's token bucket, a string (redis_ratelimit.py), when
                          `append` is given a charge: in the user's slot, not the
                          conversation's

Guarantees and where they are kept:
- Atomic dedupe + seq + append + publish: one Lua script (`APPEND`, in redis_log_scripts.py).
  Redis runs a script without interleaving any other command, so PUBLISH order equals seq
  order on each channel (with replicas required the publish moves to `COMMIT`, below, which
  keeps that order).
- `duplicate` means the sender sent twice: each `append` call passes a fresh attempt id, kept
  with the event, so when redis-py re-sends the script after a dropped connection (its retry on
  `ConnectionError`/`TimeoutError`), or makes again on the pool a call the shared link lost
  (redis_shared_link.py), and the first run had gone through, the re-run finds its own id and
  answers the original event as new, not as a duplicate.
- The persistence signal: the append script also adds the conversation to the dirty set and,
  when that made it dirty (`ZADD NX` added it) and no batch job holds the schedule, claims it
  with its attempt id, which the caller then queues (chat/domain/persistence.py). One script,
  so no append can slip between a job's "nothing dirty" check and its release of the schedule
  (redis_persist_signal.py). An append into a conversation already dirty claims nothing (one
  `SET` fewer on the busy path): whatever made it dirty either claimed the schedule or found
  it held (an append, the sweep, `Persister.mark`), or is a job putting back what it did not
  finish, which then carries its chain on (`persist_continue` finds the set not empty); a
  conversation leaves the set only through a job's take, and a chain's job releases the
  schedule only when the set is empty. So while jobs run, every dirty conversation is some
  job's to drain. What is left without a job: a schedule given back because queueing its job
  failed (`after_append`, the sweep), a job dead-lettered or lost whose schedule expired, a
  sender that died between its claim and its enqueue (until the TTL). (A helper job, which has
  no token, that puts part of a backlog back carries the chain on itself when none holds the
  schedule: `Persister.run`.) Those
  conversations wait for the periodic sweep (`sweep_interval_s`, 30 s; it takes the schedule
  over) or for an append that makes some other conversation dirty, whose job drains the whole
  set; before, the next append into any conversation claimed the schedule. The busy path also
  skips the `ZADD`: the head's `dirty` field, read with `seq`, says the conversation is in the
  set; the take pops it and clears the field in one script (`TAKE_DIRTY`), so "field set"
  implies "in the set" (the converse need not hold: `mark_dirty` adds without the field, which
  only costs the next append a `ZADD` that finds it there). Nothing acked
  waits unsafely: the log keeps every
  event until it is archived (trim drops only archived events). The two persist
  keys carry their own tag: on one Redis (standalone or Sentinel, what `RedisTarget` supports)
  a script may touch them with the conversation's; Redis Cluster would need them per slot.
- One round trip per send, rate limit included: with a `charge` the script takes the
  sender's token (the limiter's own Lua function, `BUCKET_LUA`) before it answers a dedupe hit
  or assigns a seq, and an empty bucket returns -2 with the wait, having written nothing (the
  send's dedupe field is written with its event, after the charge).
  Which runs are charged (fresh, re-sent by redis-py, retried by the client) is argued next to
  `APPEND`. The bucket key is in the user's slot: like the persist keys, fine on one Redis;
  a Redis Cluster client would have to charge through `RedisRateLimiter` first, a second
  round trip as before.
- Durability: the script's writes reach the AOF before Redis replies to anyone, and with
  `appendfsync always` it fsyncs before replying (subscribers' buffers are flushed after the
  AOF too), so a returned `append` survives a Redis crash.
- Replication (`min_replicas` > 0, the default with Sentinel): `append` returns only after
  `WAIT min_replicas timeout`, sent on the script's own connection in the same round trip,
  counted that many replicas holding the write; fewer raises `Unavailable` (the client retries
  and is deduplicated). So an acked message survives a failover to any of those replicas. A
  dedupe hit rewrites its dedupe field (a no-op that is replicated) so that WAIT then covers
  the original write too: WAIT only waits for the calling connection's own last write.
- Nothing unreplicated is seen (`min_replicas` > 0): the append script then writes the event
  without publishing it, and reads stop at `committed`. Only after WAIT does `COMMIT` move
  `committed` up to the event and publish every frame it passes; replication is one ordered
  stream, so the replicas holding this write hold every earlier one too. A failover can drop
  an unreplicated event and reuse its seq, but nobody read it, so no reader holds a message
  history lacks. Commits run one at a time and publish only above the last commit point, so
  PUBLISH order stays seq order. A writer that died between WAIT and commit leaves its event
  unannounced until the next append's commit passes it or the sweep's `settle` commits it.
- No seq reuse after Redis loses its data: a missing head is never created by the append script
  itself; the caller rebuilds it from the archive's floor first (`_ensure_head`; the highest
  seq the archive holds, `MongoArchive.floor`), and marks everything up to it as trimmed (and
  archived) so `read` reports those ranges incomplete instead of empty.
- Archive progress lives here, not in MongoDB: the worker records it with one script call per
  batch job (`MARK_ARCHIVED`, after the archive's writes returned), which is what lets a job cost
  MongoDB only its insert. It only moves up; a failover that loses the last write of it
  moves it back, which costs re-archiving (idempotent), never a gap: the record is a lower bound.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import orjson
import redis.asyncio as aioredis

from chat.domain.channels import conversation_channel
from chat.domain.errors import Unavailable
from chat.domain.frames import event_frame
from chat.domain.models import AppendResult, Event, EventDraft, LogRange, RateCharge
from chat.stores.cluster.redis_conn import redis_errors
from chat.stores.cluster.redis_keys import DEFAULT_KEYS, RedisKeys
from chat.stores.cluster.redis_log_scripts import (
    APPEND,
    COMMIT,
    COMMIT_PUBLISH_MAX,
    ENSURE_HEAD,
    MARK_ARCHIVED,
    READ,
    READ_UNARCHIVED,
    TOUCH_HEAD,
    TRIM,
)
from chat.stores.cluster.redis_persist_signal import SCHEDULE_TTL_S, RedisPersistSignal
from chat.stores.cluster.redis_shared_link import SharedLink

log = logging.getLogger(__name__)

DEDUPE_WINDOW_S = 24 * 3600
"""A retried send returns the original event for at least this long. Older dedupe entries are
dropped when their event is trimmed from the log, so dedupe memory is bounded by the send rate
times this window, not by the conversation's whole history."""

UNARCHIVED_PER_CALL = 16
"""Conversations per `READ_UNARCHIVED` call: at 500 events each, what one script may read before
other clients' commands (sends) get their turn."""

TRIM_CHUNK = 500
"""Events one trim script call removes at most (it decodes each one's frame to time its dedupe
field): a trim after a long backlog is several short calls, not one that holds Redis."""

Floor = Callable[[str], Awaitable[int]]
"""Where a lost head restarts: the highest seq the archive holds for the conversation."""


def _frame_template(draft: EventDraft) -> tuple[bytes, bytes]:
    """The frame's bytes before the seq digits and between seq and ts.

    `"seq":0,` cannot occur earlier in the encoding: only `type` and `conversation_id` precede
    it, and a quote inside a JSON string is escaped."""
    draft_event = Event(
        draft.conversation_id,
        0,
        draft.kind,
        draft.sender_id,
        draft.client_id,
        draft.body,
        draft.target_seq,
        0,
    )
    encoded = event_frame(draft_event)
    before, marker, after = encoded.partition(b'"seq":0,')
    assert marker, "frames.event_dict changed its key order"
    assert after.endswith(b'"ts":0}'), "frames.event_dict changed its key order"
    return before + b'"seq":', b"," + after[: -len(b"0}")]


def _event(frame: bytes) -> Event:
    return Event.from_dict(orjson.loads(frame))


class RedisEventLog(RedisPersistSignal):
    def __init__(
        self,
        client: aioredis.Redis,
        floor: Floor,
        fetch_archived: Callable[[str, int], Awaitable[Event | None]],
        *,
        dedupe_window_s: int = DEDUPE_WINDOW_S,
        keys: RedisKeys = DEFAULT_KEYS,
        min_replicas: int = 0,
        wait_timeout_ms: int = 1000,
        trim_chunk: int = TRIM_CHUNK,
        shared: SharedLink | None = None,
    ) -> None:
        """`shared`: the connection the append script goes over (it may run twice, being
        deduplicated by attempt id), instead of a pooled one per call."""
        self._redis = client
        self._shared = shared
        self._min_replicas = min_replicas
        self._wait_timeout_ms = wait_timeout_ms
        self._keys = keys
        self._floor = floor
        self._fetch_archived = fetch_archived
        self._dedupe_window_s = dedupe_window_s
        self._trim_chunk = trim_chunk
        self._append = client.register_script(APPEND)
        self._ensure = client.register_script(ENSURE_HEAD)
        self._read = client.register_script(READ)
        self._trim = client.register_script(TRIM)
        self._commit_script = client.register_script(COMMIT)
        self._touch = client.register_script(TOUCH_HEAD)
        self._mark_archived = client.register_script(MARK_ARCHIVED)
        self._read_unarchived = client.register_script(READ_UNARCHIVED)
        self._signal_init(client)

    async def append(self, draft: EventDraft, *, charge: RateCharge | None = None) -> AppendResult:
        cid = draft.conversation_id
        prefix, middle = _frame_template(draft)
        attempt = secrets.token_urlsafe(12)  # this call's attempt id, shared by redis-py's retries
        args: list[str | bytes] = [
            self._keys.channel(conversation_channel(cid)),
            f"{draft.sender_id}\x00{draft.client_id}",
            prefix,
            middle,
            attempt,
            cid,
            str(SCHEDULE_TTL_S),
            "1" if self._min_replicas > 0 else "0",
        ]
        keys = [*self._keys.log(cid), *self._keys.persist]
        if charge is not None:
            # The user's bucket, the same key `RedisRateLimiter` keeps for `charge.key`.
            keys.append(self._keys.rate(charge.key))
            args += [repr(float(charge.rate_per_s)), str(charge.burst)]
        for _ in range(3):
            reply = await self._run_append(keys, args)
            status = int(reply[0])
            if status == -2 and charge is not None:
                raise charge.refused(float(reply[1]))  # nothing written, no seq used
            if status < 0:
                await self._ensure_head(cid)
                continue
            job = reply[3].decode() if len(reply) > 3 and reply[3] else None
            if self._min_replicas > 0:
                # On the replicas now (WAIT above): announce it, and everything before it.
                job = await self._commit(cid, int(reply[1]), attempt, signal=True) or job
            if status == 2:
                return AppendResult(_event(reply[2]), duplicate=False, persist_job=job)
            if status == 1:
                event = Event(
                    cid,
                    int(reply[1]),
                    draft.kind,
                    draft.sender_id,
                    draft.client_id,
                    draft.body,
                    draft.target_seq,
                    int(reply[2]),
                )
                return AppendResult(event, duplicate=False, persist_job=job)
            original = await self._original(cid, int(reply[1]), reply[2])
            return AppendResult(original, duplicate=True, persist_job=job)
        raise RuntimeError(f"log head of {cid} vanished while appending")  # pragma: no cover

    async def _run_append(self, keys: list[str], args: list[str | bytes]) -> list[Any]:
        """The append script, then (when replicas are required) WAIT on the same connection in
        the same round trip; fewer replicas than required is `Unavailable`, never an ack."""
        if self._min_replicas <= 0:
            with redis_errors():
                if self._shared is not None:
                    return list(await self._shared.evalsha(self._append, keys, args))
                return list(await self._append(keys=keys, args=args))
        with redis_errors():
            async with self._redis.pipeline(transaction=False) as pipe:
                await self._append(keys=keys, args=args, client=pipe)
                pipe.execute_command("WAIT", self._min_replicas, self._wait_timeout_ms)
                reply, replicas = await pipe.execute()
        if int(reply[0]) >= 0:
            self._require_replicas(int(replicas))
        return list(reply)

    def _require_replicas(self, replicas: int) -> None:
        if replicas < self._min_replicas:
            raise Unavailable(
                f"Redis is unavailable: the write reached {replicas} of the "
                f"{self._min_replicas} replicas required within {self._wait_timeout_ms} ms",
                code="dependency_unavailable",
                dependency="Redis",
            )

    async def _commit(self, cid: str, seq: int, attempt: str, *, signal: bool) -> str | None:
        """Move the commit point to `seq` (known to be on the replicas) and publish the frames
        it passes; with `signal`, also the persistence signal the append script left out. The
        job token claimed, if any (the same for a re-run of the same attempt)."""
        head, stream = self._keys.log(cid)[:2]
        args: list[str | int] = [
            seq,
            self._keys.channel(conversation_channel(cid)),
            cid,
            SCHEDULE_TTL_S,
            attempt,
            "1" if signal else "0",
            COMMIT_PUBLISH_MAX,
        ]
        with redis_errors():
            job = await self._commit_script(keys=[head, stream, *self._keys.persist], args=args)
        return job.decode() if job else None

    async def settle(self) -> list[str]:
        """Commit what a writer left uncommitted: an event on the primary whose append died
        between its write and its commit (the sender's process crashed, or its WAIT timed out
        and the client never retried). Each such head is rewritten on this connection, then
        WAITed for, so the WAIT covers the stranded write; then committed (and published) if
        the replicas have it. The conversations committed; the caller marks them dirty."""
        if self._min_replicas <= 0:
            return []
        settled = []
        for cid, (seq, committed) in zip(*await self._heads("seq", "committed"), strict=True):
            if seq is None or committed is None or int(seq) <= int(committed):
                continue
            with redis_errors():
                async with self._redis.pipeline(transaction=False) as pipe:
                    await self._touch(keys=self._keys.log(cid)[:1], client=pipe)
                    pipe.execute_command("WAIT", self._min_replicas, self._wait_timeout_ms)
                    touched, replicas = await pipe.execute()
            if touched is None or int(replicas) < self._min_replicas:
                continue  # the next sweep tries again
            await self._commit(cid, int(touched), secrets.token_urlsafe(12), signal=False)
            settled.append(cid)
        return settled

    async def _heads(self, *fields: str) -> tuple[list[str], list[list[bytes | None]]]:
        """Every conversation of the backlog set and the given fields of its head."""
        with redis_errors():
            raw: set[bytes] = await self._redis.smembers(self._keys.backlog)  # type: ignore[assignment]
            members = sorted(m.decode() for m in raw)
            async with self._redis.pipeline(transaction=False) as pipe:
                for cid in members:
                    pipe.hmget(self._keys.log(cid)[0], *fields)
                heads = await pipe.execute()
        return members, heads

    async def _original(self, cid: str, seq: int, frame: bytes | None) -> Event:
        if frame is not None:
            return _event(frame)
        # Trimmed from the log within the dedupe window: the archive has it (trim only drops
        # archived events).
        archived = await self._fetch_archived(cid, seq)
        if archived is None:
            raise RuntimeError(f"event {cid}#{seq} is neither in the log nor in the archive")
        return archived

    async def _ensure_head(self, cid: str) -> None:
        """Create a missing head at the archive's floor: after Redis lost its data, seq
        continues above everything archived instead of restarting at 1."""
        with redis_errors():
            await self._redis.sadd(self._keys.backlog, cid)
        floor = await self._floor(cid)
        with redis_errors():
            created = await self._ensure(keys=self._keys.log(cid)[:1], args=[floor])
        if created and floor > 0:
            log.warning(
                "log head of conversation %s was missing; restored at archived seq %d "
                "(events after it that were only in Redis are lost)",
                cid,
                floor,
            )

    async def start(self, conversation_id: str) -> None:
        with redis_errors():
            await self._redis.sadd(self._keys.backlog, conversation_id)
            await self._ensure(keys=self._keys.log(conversation_id)[:1], args=[0])

    async def read(self, conversation_id: str, after_seq: int, limit: int) -> LogRange:
        keys = self._keys.log(conversation_id)[:2]
        for _ in range(3):
            with redis_errors():
                reply = await self._read(keys=keys, args=[f"{after_seq + 1}-0", limit])
            if int(reply[0]) >= 0:
                trimmed, frames = int(reply[0]), reply[1]
                return LogRange(tuple(_event(f) for f in frames), complete=after_seq >= trimmed)
            await self._ensure_head(conversation_id)
        raise RuntimeError(f"log head of {conversation_id} vanished")  # pragma: no cover

    async def read_many(self, ranges: Sequence[tuple[str, int]], limit: int) -> list[LogRange]:
        """`read` of each (conversation, after_seq), in one pipelined round trip; a missing
        head (Redis lost its data) takes `read`'s own path, which rebuilds it."""
        if not ranges:
            return []
        with redis_errors():
            async with self._redis.pipeline(transaction=False) as pipe:
                for cid, after_seq in ranges:
                    await self._read(
                        keys=self._keys.log(cid)[:2],
                        args=[f"{after_seq + 1}-0", limit],
                        client=pipe,
                    )
                replies = await pipe.execute()
        out: list[LogRange] = []
        for (cid, after_seq), reply in zip(ranges, replies, strict=True):
            if int(reply[0]) < 0:
                out.append(await self.read(cid, after_seq, limit))
                continue
            trimmed, frames = int(reply[0]), reply[1]
            out.append(LogRange(tuple(_event(f) for f in frames), complete=after_seq >= trimmed))
        return out

    async def last_seq(self, conversation_id: str) -> int:
        head = self._keys.log(conversation_id)[0]
        for _ in range(2):
            with redis_errors():
                seq, committed = await self._redis.hmget(head, "seq", "committed")
            if seq is not None:
                return int(committed if committed is not None else seq)
            await self._ensure_head(conversation_id)
        raise RuntimeError(f"log head of {conversation_id} vanished")  # pragma: no cover

    async def archived(self, conversation_ids: Sequence[str]) -> list[int | None]:
        if not conversation_ids:
            return []
        if len(conversation_ids) == 1:  # every history page and unread count: no pipeline
            with redis_errors():
                one = await self._redis.hget(self._keys.log(conversation_ids[0])[0], "archived")
            return [None if one is None else int(one)]
        with redis_errors():
            async with self._redis.pipeline(transaction=False) as pipe:
                for cid in conversation_ids:
                    pipe.hget(self._keys.log(cid)[0], "archived")
                raw = await pipe.execute()
        return [None if r is None else int(r) for r in raw]

    async def read_unarchived(
        self, conversation_ids: Sequence[str], limit: int
    ) -> list[tuple[int, LogRange] | None]:
        """One pipelined round trip of one script per `UNARCHIVED_PER_CALL` conversations
        (instead of a record lookup and a read script per conversation)."""
        cids = list(conversation_ids)
        if not cids:
            return []
        calls = [
            [k for c in cids[start : start + UNARCHIVED_PER_CALL] for k in self._keys.log(c)[:2]]
            for start in range(0, len(cids), UNARCHIVED_PER_CALL)
        ]
        with redis_errors():
            if len(calls) == 1:
                # A pipeline that runs a script first asks `SCRIPT EXISTS` (redis-py): one
                # command more per take, for the one call a take of a few conversations needs.
                replies = await self._read_unarchived(keys=calls[0], args=[limit])
            else:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for keys in calls:
                        await self._read_unarchived(keys=keys, args=[limit], client=pipe)
                    replies = [r for chunk in await pipe.execute() for r in chunk]
        out: list[tuple[int, LogRange] | None] = []
        for reply in replies:
            if int(reply[0]) < 0:
                out.append(None)
                continue
            after, trimmed, frames = int(reply[0]), int(reply[1]), reply[2]
            page = LogRange(tuple(_event(f) for f in frames), complete=after >= trimmed)
            out.append((after, page))
        return out

    async def mark_archived(self, progress: Mapping[str, int]) -> None:
        if not progress:
            return
        cids = list(progress)
        with redis_errors():
            await self._mark_archived(
                keys=[self._keys.log(cid)[0] for cid in cids], args=[progress[c] for c in cids]
            )

    async def trim(self, conversation_id: str, keep_after_seq: int) -> None:
        keys = self._keys.log(conversation_id)
        with redis_errors():
            time_s, _ = await self._redis.time()
            cutoff_ms = (int(time_s) - self._dedupe_window_s) * 1000
            args = [keep_after_seq, cutoff_ms, self._trim_chunk]
            # Each call trims up to `trim_chunk` more events (2: not there yet).
            while await self._trim(keys=keys, args=args) == 2:
                pass

    async def backlog(self) -> dict[str, int]:
        """Conversations whose log holds events (last seq above the trim point), with their
        last committed seq (`last_seq`), from one pipelined read of the heads.

        The set only grows (one member per conversation ever written on this Redis): removing
        members would race with appends, and a conversation count is a small bound."""
        members, heads = await self._heads("seq", "trimmed", "committed")
        return {
            cid: int(committed if committed is not None else seq)
            for cid, (seq, trimmed, committed) in zip(members, heads, strict=True)
            if seq is not None and int(seq) > int(trimmed or 0)
        }
