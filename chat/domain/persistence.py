"""Moving the hot log into the archive, in bulk (the persist worker's job).

The signal: `EventLog.append` marks the conversation dirty and, when no batch job is scheduled,
claims the schedule for a fresh token in the same atomic step, so the sender pays no extra
round trip and a burst of sends queues one job (`after_append`). A batch job takes up to
`BATCH_CONVERSATIONS` dirty conversations at once, reads where each one's archiving stands in
one round trip (the log's record, `EventLog.archived`; the archive's watermark where the log has
none), applies all their events in bulk, records the new progress in the log (one round trip,
`EventLog.mark_archived`), and at its end either releases the schedule (nothing dirty) or queues
the next job (`EventLog.persist_continue`, atomic against appends). The archive's own watermarks
are written by the sweep (`MessageArchive.record_watermarks`), not per job: on MongoDB that is
what leaves a job of messages one insert.

Guarantees kept here (docs/architecture.md, "Persistence worker"):
- nothing acked is lost: an entry leaves the dirty set only when a job took it; a job that
  fails puts its entries back before raising (Dramatiq retries it), and one that crashed is
  found again by the sweep, which compares how far each conversation is archived with its
  last seq;
- nothing is duplicated or reordered: `MessageArchive.apply` is idempotent (keyed by seq, an
  edit never overwrites a later one, delete wins), so two jobs that happen to hold the same
  conversation (an append marked it dirty again while the first job worked) both apply the same
  events safely, and progress (the log's record, the archive's watermark) only moves up, and
  only after the events are written: it is a lower bound of what the archive holds, so
  starting from it never skips an event;
- at most one chain of jobs carries on: a job whose token no longer holds the schedule (the
  sweep took it over from a job it presumed lost) ends instead of re-queueing itself.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from chat.domain.errors import Unavailable
from chat.domain.limits import Limits
from chat.domain.models import AppendResult, Event, LogRange
from chat.domain.ports import EventLog, JobQueue, MessageArchive

log = logging.getLogger(__name__)

BATCH_CONVERSATIONS = 64
"""Dirty conversations one take claims: bounds a job's memory (with `PAGE`) and its run time."""
PAGE = 500
"""Events read per conversation per take; a longer backlog stays dirty for the next take."""
APPLY_CHUNK = 2000
"""Events per `MessageArchive.apply` call (one bulk insert of messages each on MongoDB)."""
TRIM_EVERY = 100
"""The batch path trims a conversation's log when its trim point crosses a multiple of a step
(this, or a tenth of `log_keep_events` when that is smaller), not on every job: the log keeps
up to a step more than `log_keep_events` archived events, and a job that archived a few events
mostly costs no trim round trips."""
JOB_BUDGET_S = 30.0
"""A job keeps taking full batches (a backlog) for at most this long, then re-queues itself."""
HELPER = ""
"""The token of a helper job: queued by a job whose take came back full (a backlog), so the
other workers of the pool take batches beside it; it carries no chain on."""


class ProgressInTheArchive:
    """The `EventLog` methods of a log that keeps no archive progress of its own: one whose
    archive moves its watermarks in the same transaction as the events (SQLite), so they are
    exact and the persister reads those instead (`Persister.progress`)."""

    async def archived(self, conversation_ids: Sequence[str]) -> list[int | None]:
        return [None] * len(conversation_ids)

    async def mark_archived(self, progress: Mapping[str, int]) -> None:
        return None

    async def read_unarchived(
        self, conversation_ids: Sequence[str], limit: int
    ) -> list[tuple[int, LogRange] | None]:
        return [None] * len(conversation_ids)


def new_token() -> str:
    return secrets.token_urlsafe(12)


async def after_append(queue: JobQueue, log_: EventLog, result: AppendResult) -> None:
    """Queue the batch job this append claimed the schedule for, if any."""
    token = result.persist_job
    if token is None:
        return
    try:
        await queue.persist_batch(token)
    except Exception:
        # The event is durable and published: the sender must get its ack. Released, so the
        # next send that makes a conversation dirty queues the job; the periodic sweep covers
        # the conversations already dirty (their appends claim nothing, redis_log.py).
        log.warning("could not queue a persistence job; the sweep will", exc_info=True)
        with contextlib.suppress(Exception):
            await log_.release_persist(token)


@dataclass(frozen=True, slots=True)
class BatchResult:
    conversations: int
    events: int
    carry_on: str | None = None
    """The chain's token when something is still dirty, the schedule was kept and no job was
    queued for it (`run(requeue=False)`): the caller carries the chain on (`requeue` when it
    stops)."""


WATERMARK_STEP = 1000
"""A conversation that never goes quiet has its archive watermark copied whenever its progress
crosses a multiple of this between two sweeps: at most one MongoDB write per this many events,
and the watermark lags by at most about this many (see `_copy_due`)."""


class Lag(NamedTuple):
    """A conversation the sweep found behind: how far it is archived, and its last seq."""

    archived: int
    last: int


def _copy_due(
    cid: str, marks: Mapping[str, int], behind: Mapping[str, Lag], swept: Mapping[str, int]
) -> bool:
    """Whether the sweep copies this conversation's progress into the archive's watermark:
    once it is caught up and its progress did not move since this process's previous sweep
    (quiet for a sweep: a busy conversation's copy is outdated by its next job, and every copy
    is a MongoDB command of its own on FerretDB, which was half the round trips of a busy
    cluster with many small rooms, issue 14), or when its progress crossed a `WATERMARK_STEP`
    since then, so that one that is never quiet still gets a watermark that lags by a bounded
    amount. A process that has not swept a conversation before waits for its next sweep."""
    previous = swept.get(cid)
    if previous is None:
        return marks[cid] >= WATERMARK_STEP
    if previous // WATERMARK_STEP != marks[cid] // WATERMARK_STEP:
        return True
    return cid not in behind and previous == marks[cid]


class Persister:
    def __init__(
        self, log_: EventLog, archive: MessageArchive, queue: JobQueue, limits: Limits
    ) -> None:
        self._log = log_
        self._archive = archive
        self._queue = queue
        self._keep = limits.log_keep_events
        self._trim_step = max(1, min(TRIM_EVERY, self._keep // 10))
        self._swept: dict[str, int] = {}
        """Each conversation's progress as this process's previous sweep read it."""
        self._recorded: dict[str, int] = {}
        """How far this process saw each conversation's archive watermark, read or written: a
        quiet conversation is compared with the archive once, not at every sweep."""

    async def run(self, token: str | None, *, requeue: bool = True) -> BatchResult:
        """One batch job. `token` None (or `HELPER`): a job that does not carry the chain on.
        `requeue` False: when the chain goes on, say so (`BatchResult.carry_on`) instead of
        queueing its next job."""
        conversations = events = 0
        deadline = time.monotonic() + JOB_BUDGET_S
        helped = False
        while True:
            cids = await self._log.take_dirty(BATCH_CONVERSATIONS)
            if not cids:
                break
            if len(cids) == BATCH_CONVERSATIONS and not helped:
                helped = True  # one helper per job: the pool joins in as the backlog lasts
                try:
                    await self._queue.persist_batch(HELPER)
                except Exception:
                    log.warning("could not queue a helper persistence job", exc_info=True)
            try:
                events += await self.persist_many(cids)
            except BaseException:
                # Back in the set before Dramatiq retries this job (a crash: the sweep).
                with contextlib.suppress(Exception):
                    await self._log.mark_dirty(cids)
                raise
            conversations += len(cids)
            if len(cids) < BATCH_CONVERSATIONS or time.monotonic() > deadline:
                break
        # A helper (no token) carries on only when no chain holds the schedule: it may have put
        # a backlog back (`more`) after the chain's job ended, and appends into a conversation
        # that is already dirty claim nothing (redis_log.py), so nobody else would.
        chain = token or new_token()
        if await self._log.persist_continue(chain):
            if not requeue:
                return BatchResult(conversations, events, carry_on=chain)
            await self._queue.persist_batch(chain)
        return BatchResult(conversations, events)

    async def hold(self, chain: str) -> bool:
        """Claim the schedule again for a chain whose last take released it (nothing dirty),
        so the sends of the next linger join its next take instead of queueing a job; False
        when an append claimed it first (that append queues the job)."""
        return await self._log.claim_persist(chain, take_over=False)

    async def requeue(self, chain: str) -> None:
        """Queue the next job of a chain a job carried on itself (`run(requeue=False)`) and
        now leaves; if that fails, the schedule is given back (the next append claims it)."""
        await self._queue_or_release(chain)

    async def catch_up(self, cids: Sequence[str]) -> None:
        """Archive now everything the log holds past the archive for these conversations,
        whatever is dirty or scheduled (embedded search, which reads the archive only, finds a
        message right after its ack this way). Idempotent beside a batch job that holds the same
        conversations, like two jobs are; a conversation stays in the dirty set (its job finds
        nothing left)."""
        pending = list(cids)
        while pending:
            chunk, pending = pending[:BATCH_CONVERSATIONS], pending[BATCH_CONVERSATIONS:]
            _, more = await self._persist_pages(chunk)
            pending.extend(more)

    async def persist_many(self, cids: list[str]) -> int:
        """Archive what the log holds after each conversation's progress, up to `PAGE` each;
        progress and events are read together, in one round trip, and progress is recorded
        once, after the writes. A conversation with more stays dirty."""
        archived, more = await self._persist_pages(cids)
        if more:
            await self._log.mark_dirty(more)
        return archived

    async def _persist_pages(self, cids: list[str]) -> tuple[int, list[str]]:
        """`persist_many`'s writes: the number of events archived, and the conversations that
        had a full page (more to come)."""
        found = await self._log.read_unarchived(cids, PAGE)
        marks = {cid: hit[0] for cid, hit in zip(cids, found, strict=True) if hit is not None}
        pages = {cid: hit[1] for cid, hit in zip(cids, found, strict=True) if hit is not None}
        missing = [cid for cid in cids if cid not in marks]
        if missing:  # heads from before the log kept a record: the archive's watermark
            marks.update(await self._archive.watermarks(missing))
            read = await self._log.read_many([(cid, marks[cid]) for cid in missing], PAGE)
            pages.update(zip(missing, read, strict=True))
        events: list[Event] = []
        reached: dict[str, int] = {}
        more: list[str] = []
        for cid in cids:
            page = pages[cid]
            if not page.events:
                continue  # archived already (or trimmed past the watermark: nothing to read)
            events.extend(page.events)
            reached[cid] = page.events[-1].seq
            if len(page.events) == PAGE:
                more.append(cid)
        for start in range(0, len(events), APPLY_CHUNK):
            await self._archive.apply(events[start : start + APPLY_CHUNK])
        await self._log.mark_archived(reached)
        for cid, seq in reached.items():
            await self._trim(cid, marks[cid], seq)
        return len(events), more

    async def progress(self, cids: Sequence[str]) -> dict[str, int]:
        """How far each conversation is archived: the log's record, else (a head from before
        the log kept one, or a log that leaves it to the archive) the archive's watermark."""
        recorded = await self._log.archived(cids)
        missing = [cid for cid, seq in zip(cids, recorded, strict=True) if seq is None]
        fallback = await self._archive.watermarks(missing) if missing else {}
        return {
            cid: seq if seq is not None else fallback.get(cid, 0)
            for cid, seq in zip(cids, recorded, strict=True)
        }

    async def _trim(self, cid: str, old_watermark: int, watermark: int) -> None:
        keep_after = watermark - self._keep
        if keep_after <= 0:
            return
        step = self._trim_step
        if max(old_watermark - self._keep, 0) // step != keep_after // step:
            await self._log.trim(cid, keep_after)

    async def persist(self, conversation_id: str, batch: int = PAGE) -> int:
        """Archive one conversation's whole log and trim it to `log_keep_events` (tests and
        tools; the worker uses `run`). Idempotent like the batch path."""
        moved = 0
        watermark = (await self.progress([conversation_id]))[conversation_id]
        while True:
            page = await self._log.read(conversation_id, watermark, batch)
            if not page.events:
                if not page.complete:
                    return moved
                break
            await self._archive.apply(page.events)
            moved += len(page.events)
            watermark = max(watermark, page.events[-1].seq)
            if len(page.events) < batch:
                break
        await self._log.mark_archived({conversation_id: watermark})
        await self._archive.record_watermarks({conversation_id: watermark})
        keep_after = watermark - self._keep
        if keep_after > 0:
            await self._log.trim(conversation_id, keep_after)
        return moved

    async def mark(self, cids: list[str]) -> None:
        """Mark conversations dirty from outside an append (a job from an older release), and
        queue a batch job if none is scheduled."""
        await self._log.mark_dirty(cids)
        token = new_token()
        if await self._log.claim_persist(token, take_over=False):
            await self._queue_or_release(token)

    async def _queue_or_release(self, token: str) -> None:
        """Queue the batch job of the schedule `token` holds; if that fails, give the schedule
        back so the next append (or sweep) claims it and queues one."""
        try:
            await self._queue.persist_batch(token)
        except BaseException:
            with contextlib.suppress(Exception):
                await self._log.release_persist(token)
            raise

    async def sweep(self) -> dict[str, Lag]:
        """The conversations whose archive lags their log, with how far each is archived and
        its last seq (heads and progress in three round trips, whatever their number):
        marked dirty again and a batch job queued for them, taking the schedule over (whatever
        held it may have crashed; if it did not, it ends when it sees the schedule is no longer
        its). Then the archive's watermarks catch up with the progress the log records (the
        only place they are written, see the module's note), for the conversations that went
        quiet (`_copy_due`): a watermark copied while its conversation is still busy is
        outdated by the next job, and only matters once nothing newer is archived
        (`MessageArchive.floor` counts the newest archived event too). On FerretDB each copy is
        a command of its own: a write per busy conversation per sweep is gone."""
        settled = await self._log.settle()
        if settled:
            log.warning("committed events left uncommitted by their writer in %s", settled)
        heads = await self._log.backlog()
        cids = list(heads)
        marks = await self.progress(cids) if cids else {}
        behind = {cid: Lag(marks[cid], heads[cid]) for cid in cids if marks[cid] < heads[cid]}
        if behind:
            await self._log.mark_dirty(list(behind))
            token = new_token()
            await self._log.claim_persist(token, take_over=True)
            await self._queue_or_release(token)
        swept, self._swept = self._swept, {cid: marks[cid] for cid in cids}
        self._recorded = {cid: self._recorded[cid] for cid in cids if cid in self._recorded}
        due = [
            cid
            for cid in cids
            if self._recorded.get(cid, -1) < marks[cid] and _copy_due(cid, marks, behind, swept)
        ]
        await self._record_watermarks(due, marks)
        return behind

    async def _record_watermarks(self, cids: list[str], marks: dict[str, int]) -> None:
        """Copy the log's progress into the archive's watermarks where they are behind. Best
        effort: a failure (the archive down) leaves them behind until the next sweep, and
        costs nothing else (they are a lower bound)."""
        if not cids:
            return
        try:
            stored = await self._archive.watermarks(cids)
            stale = {cid: marks[cid] for cid in cids if marks[cid] > stored.get(cid, 0)}
            await self._archive.record_watermarks(stale)
            self._recorded.update({cid: max(marks[cid], stored.get(cid, 0)) for cid in cids})
        except Unavailable as exc:
            log.warning("archive watermarks not brought up to date: %s", exc.message)
