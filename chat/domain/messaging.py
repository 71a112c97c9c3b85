"""Sending, editing, deleting, history, resume, read pointers, unread counts and search.

The send path keeps the guarantees of docs/architecture.md:
1. the sender is acked only after `EventLog.append` returned, i.e. the event is durable;
2. a retried send (same sender and client_id) returns the original event;
3. `seq` is assigned atomically per conversation and the bus sees events in `seq` order;
   the send's rate-limit token is taken in that same step (`EventLog.append`'s `charge`);
4. resume replays exactly the missing range or says `not_recoverable`, never a silent gap;
5. archiving happens later in a worker, so an archive outage delays history, not chat.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from chat.domain import validation
from chat.domain.accounts import Principal
from chat.domain.channels import conversation_channel
from chat.domain.errors import Forbidden, InvalidRequest, NotFound, Unavailable
from chat.domain.frames import encode
from chat.domain.history import ArchiveBreaker, ArchiveDown, HistoryPage, choose, fold
from chat.domain.limits import Limits
from chat.domain.membership import MembershipCache, MembershipCheck
from chat.domain.models import (
    AppendResult,
    Event,
    EventDraft,
    EventKind,
    Message,
    RateCharge,
)
from chat.domain.persistence import Persister, after_append
from chat.domain.ports import (
    Bus,
    ConversationStore,
    EventLog,
    JobQueue,
    MessageArchive,
    RateLimiter,
)

log = logging.getLogger(__name__)
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Replay:
    """A resume answer for one conversation: `events` to deliver, or `recoverable` False."""

    conversation_id: str
    events: tuple[Event, ...]
    recoverable: bool


class MessagingService:
    def __init__(
        self,
        conversations: ConversationStore,
        log: EventLog,
        archive: MessageArchive,
        bus: Bus,
        queue: JobQueue,
        limiter: RateLimiter,
        limits: Limits,
        membership: MembershipCache | None = None,  # a gateway's (chat/domain/membership.py)
        *,
        search_catches_up: bool = False,
    ) -> None:
        self._conversations = conversations
        self._members = MembershipCheck(conversations, membership)
        self._log = log
        self._archive = archive
        self._bus = bus
        self._queue = queue
        self._limiter = limiter
        self.limits = limits
        self._breaker = ArchiveBreaker()
        self.persister = Persister(log, archive, queue, limits)
        """The worker's side of persistence, on the same ports."""
        self._search_catches_up = search_catches_up

    async def require_member(self, conversation_id: object, user_id: str) -> str:
        cid = validation.identifier(conversation_id, "conversation_id")
        if not await self._members.is_member(cid, user_id):
            # Existence of conversations one is not in is not revealed.
            raise Forbidden("you are not a member of this conversation", code="not_member")
        return cid

    async def send(
        self, who: Principal, conversation_id: object, client_id: object, body: object
    ) -> AppendResult:
        cid = await self.require_member(conversation_id, who.user.id)
        draft = EventDraft(
            cid,
            EventKind.MESSAGE,
            who.user.id,
            validation.client_id(client_id),
            validation.body(body, self.limits),
        )
        return await self._append(draft)

    async def edit(
        self,
        who: Principal,
        conversation_id: object,
        target_seq: object,
        client_id: object,
        body: object,
    ) -> AppendResult:
        cid = await self.require_member(conversation_id, who.user.id)
        seq = validation.seq(target_seq, "seq", 1)
        cmid = validation.client_id(client_id)
        text = validation.body(body, self.limits)
        retried = await self._check_target(who, cid, seq, cmid)
        if retried is not None:
            return retried
        return await self._append(EventDraft(cid, EventKind.EDIT, who.user.id, cmid, text, seq))

    async def delete(
        self, who: Principal, conversation_id: object, target_seq: object, client_id: object
    ) -> AppendResult:
        cid = await self.require_member(conversation_id, who.user.id)
        seq = validation.seq(target_seq, "seq", 1)
        cmid = validation.client_id(client_id)
        retried = await self._check_target(who, cid, seq, cmid)
        if retried is not None:
            return retried
        return await self._append(EventDraft(cid, EventKind.DELETE, who.user.id, cmid, "", seq))

    async def _check_target(
        self, who: Principal, cid: str, seq: int, client_id: str
    ) -> AppendResult | None:
        """None when `seq` is the caller's live message (go on and append); raises when it is
        not, unless this is a retry.

        The idempotency rule (docs/protocol.md, "Idempotent sends"): a frame whose `client_id`
        this sender already used in this conversation is answered with the original event and
        `duplicate: true`, whatever happened to the target since. When the target is live, the
        log's own dedupe answers the retry; when it is gone (deleted by this very delete, or by
        a later one while an edit was retried), the log's dedupe is never reached, so the
        original is looked up here. Retries come within seconds: the log still holds it."""
        message = await self.get_message(cid, seq)
        if message is None or message.deleted:
            earlier = await self._earlier(who, cid, seq, client_id)
            if earlier is None:
                raise NotFound("no such message", code="message_not_found")
            await self._charge(who.user.id)  # a retry costs what the first attempt did
            return AppendResult(earlier, duplicate=True)
        if message.sender_id != who.user.id:
            raise Forbidden("you can only change your own messages", code="not_author")
        return None

    async def _earlier(self, who: Principal, cid: str, seq: int, client_id: str) -> Event | None:
        """The caller's event with this client_id, if one came after the target."""
        for event in await self._tail(cid, seq):
            if event.sender_id == who.user.id and event.client_id == client_id:
                return event
        return None

    def _send_charge(self, sender_id: str) -> RateCharge:
        """The token bucket every send, edit and delete of a user costs one token of."""
        return RateCharge(f"send:{sender_id}", self.limits.send_rate_per_s, self.limits.send_burst)

    async def _charge(self, sender_id: str) -> None:
        """The same token through the limiter port, for a send answered without an append."""
        charge = self._send_charge(sender_id)
        wait = await self._limiter.allow(charge.key, charge.rate_per_s, charge.burst)
        if wait > 0:
            raise charge.refused(wait)

    async def _append(self, draft: EventDraft) -> AppendResult:
        # The log takes the token in the append's own step (one round trip per send), before
        # its dedupe, so a retried duplicate costs a token as the first attempt did.
        result = await self._log.append(draft, charge=self._send_charge(draft.sender_id))
        # The append marked the conversation dirty itself; a job is queued only by the append
        # that found none scheduled (chat/domain/persistence.py).
        await after_append(self._queue, self._log, result)
        return result

    async def get_message(self, conversation_id: str, seq: int) -> Message | None:
        page = await self._page(conversation_id, before=seq + 1, after=seq - 1, limit=1)
        found = [m for m in page.messages if m.seq == seq]
        if found:
            return found[0]
        if page.archive_unavailable:
            # Not in the log, and the archive cannot say: "no such message" would be a guess.
            raise ArchiveDown("the message archive is unavailable; try again later")
        return None

    async def history(
        self,
        who: Principal,
        conversation_id: object,
        *,
        before: object = None,
        after: object = None,
        limit: object = 50,
    ) -> HistoryPage:
        cid = await self.require_member(conversation_id, who.user.id)
        lim = validation.seq(limit, "limit", 1)
        if lim > self.limits.history_max_limit:
            raise InvalidRequest(
                f"limit must be at most {self.limits.history_max_limit}", code="invalid_request"
            )
        b = None if before is None else validation.seq(before, "before", 1)
        a = None if after is None else validation.seq(after, "after", 0)
        if b is not None and a is not None:
            raise InvalidRequest("give before or after, not both", code="invalid_request")
        return await self._page(cid, before=b, after=a, limit=lim)

    async def _page(
        self, cid: str, *, before: int | None, after: int | None, limit: int
    ) -> HistoryPage:
        try:
            return HistoryPage(await self._merged(cid, before=before, after=after, limit=limit))
        except ArchiveDown:
            return await self._log_page(cid, before=before, after=after, limit=limit)

    async def _merged(
        self, cid: str, *, before: int | None, after: int | None, limit: int
    ) -> list[Message]:
        """History from the archive, with the log's not-yet-archived tail folded in.

        Events after the archive's watermark exist only in the log while the worker catches up
        (or while the archive is down): they are applied here so history is never stale.
        """
        watermark = await self._archived_upto(cid)
        tail = await self._tail(cid, watermark)
        archived = await self._archived(
            lambda: self._archive.history(cid, before=before, after=after, limit=limit)
        )
        return choose(
            fold(cid, {m.seq: m for m in archived}, tail), before=before, after=after, limit=limit
        )

    async def _log_page(
        self, cid: str, *, before: int | None, after: int | None, limit: int
    ) -> HistoryPage:
        """The archive is down: the page from the hot log alone. A page that would start below
        what the log still holds is empty rather than silently missing its start."""
        first = await self._log.read(cid, 0, 500)
        events = (
            [*first.events, *await self._tail(cid, first.events[-1].seq)] if first.events else []
        )
        floor = 0
        if not first.complete:
            floor = events[0].seq - 1 if events else await self._log.last_seq(cid)
        if after is not None and after < floor:
            return HistoryPage([], archive_unavailable=True)
        page = choose(fold(cid, {}, events), before=before, after=after, limit=limit)
        return HistoryPage(page, archive_unavailable=True)

    async def _archived(self, call: Callable[[], Awaitable[_T]]) -> _T:
        """An archive call, or ArchiveDown when the archive is (or just was) unavailable."""
        if self._breaker.tripped:
            raise ArchiveDown("the message archive is unavailable; try again later")
        try:
            return await call()
        except Unavailable as exc:
            self._breaker.trip()
            log.warning(
                "archive unavailable; history and unread counts come from the log for %.0f s: %s",
                self._breaker.cooloff_s,
                exc.message,
            )
            raise ArchiveDown(exc.message, dependency=exc.details.get("dependency")) from exc

    async def _archived_upto(self, cid: str) -> int:
        """A seq up to which the archive holds every event of the conversation: the progress
        the log records (no archive round trip), else the archive's own watermark. A lower
        bound either way, which is all the callers need: what lies above it comes from the log."""
        (recorded,) = await self._log.archived([cid])
        if recorded is not None:
            return recorded
        return await self._archived(lambda: self._archive.watermark(cid))

    async def _tail(self, cid: str, watermark: int) -> list[Event]:
        events: list[Event] = []
        after = watermark
        while True:
            page = await self._log.read(cid, after, 500)
            events.extend(page.events)
            if len(page.events) < 500:
                return events
            after = page.events[-1].seq

    async def replay(self, conversation_id: str, after_seq: int) -> Replay:
        """The events after `after_seq`, exactly: from the log when it still holds the range,
        else from the archive; longer gaps than `replay_max_events` are not recoverable."""
        last = await self._log.last_seq(conversation_id)
        if after_seq > last:
            # The client claims more than exists: its state is not ours; make it reload.
            return Replay(conversation_id, (), False)
        if last - after_seq > self.limits.replay_max_events:
            return Replay(conversation_id, (), False)
        page = await self._log.read(conversation_id, after_seq, self.limits.replay_max_events)
        if page.complete:
            return Replay(conversation_id, page.events, True)
        # The log was trimmed past the client's position: the start is in the archive.
        older = await self._archive.events(
            conversation_id, after_seq, self.limits.replay_max_events
        )
        merged = {e.seq: e for e in older}
        merged.update({e.seq: e for e in page.events})
        events = tuple(merged[s] for s in sorted(merged))
        expected = list(range(after_seq + 1, after_seq + 1 + len(events)))
        if [e.seq for e in events] != expected or (events and events[-1].seq < last):
            return Replay(conversation_id, (), False)
        return Replay(conversation_id, events, True)

    async def read_up_to(self, who: Principal, conversation_id: object, seq: object) -> int:
        cid = await self.require_member(conversation_id, who.user.id)
        target = validation.seq(seq, "seq", 0)
        last = await self._log.last_seq(cid)
        pointer = await self._conversations.set_read(cid, who.user.id, min(target, last))
        await self._bus.publish(
            conversation_channel(cid),
            encode(
                {"type": "read", "conversation_id": cid, "user_id": who.user.id, "seq": pointer}
            ),
        )
        return pointer

    async def typing(self, who: Principal, conversation_id: object) -> None:
        cid = await self.require_member(conversation_id, who.user.id)
        wait = await self._limiter.allow(f"typing:{who.user.id}", self.limits.typing_rate_per_s, 3)
        if wait > 0:
            return  # typing notices are best effort: extra ones are dropped, not errors
        await self._bus.publish(
            conversation_channel(cid),
            encode({"type": "typing", "conversation_id": cid, "user_id": who.user.id}),
        )

    async def unread(self, conversation_id: str, user_id: str, read_seq: int) -> int:
        try:
            watermark = await self._archived_upto(conversation_id)
            archived = 0
            if watermark > read_seq:
                # Counted up to the watermark only: the tail above it is counted from the log,
                # and the archive may already hold some of it.
                archived = await self._archived(
                    lambda: self._archive.count_from_others(
                        conversation_id, user_id, max(read_seq, 0), watermark
                    )
                )
        except ArchiveDown:
            watermark, archived = 0, 0  # what the log holds after the pointer: a lower bound
        tail = await self._tail(conversation_id, max(watermark, read_seq))
        deleted = {e.target_seq for e in tail if e.kind is EventKind.DELETE}
        fresh = sum(
            1
            for e in tail
            if e.kind is EventKind.MESSAGE and e.sender_id != user_id and e.seq not in deleted
        )
        # A delete still only in the tail, of a message the archive counted: not unread.
        for seq in sorted(s for s in deleted if s is not None and read_seq < s <= watermark):
            with contextlib.suppress(ArchiveDown):  # then the count is high until it is back
                gone = await self._archived(partial(self._archive.get, conversation_id, seq))
                if gone is not None and not gone.deleted and gone.sender_id != user_id:
                    archived -= 1
        return archived + fresh

    async def last_message(self, conversation_id: str) -> Message | None:
        newest = await self._page(conversation_id, before=None, after=None, limit=1)
        return newest.messages[0] if newest.messages else None

    async def start_log(self, conversation_id: str) -> None:
        """A new conversation's log starts at 0 without asking the archive (guarantee 5)."""
        await self._log.start(conversation_id)

    async def last_seq(self, conversation_id: str) -> int:
        return await self._log.last_seq(conversation_id)

    async def search(
        self, who: Principal, text: object, conversation_id: object = None, limit: int = 50
    ) -> list[Message]:
        if not isinstance(text, str) or not 1 <= len(text.strip()) <= 200:
            raise InvalidRequest("q must be 1-200 characters", code="invalid_request")
        if conversation_id is not None:
            ids: Sequence[str] = [await self.require_member(conversation_id, who.user.id)]
        else:
            ids = await self._conversations.conversation_ids_for_user(who.user.id)
        if not ids:
            return []
        if self._search_catches_up:
            await self.persister.catch_up(ids)
        return await self._archive.search(ids, text.strip(), limit)

    async def persist(self, conversation_id: str, batch: int = 500) -> int:
        """Archive one conversation's log now (chat/domain/persistence.py, `Persister`)."""
        return await self.persister.persist(conversation_id, batch)
