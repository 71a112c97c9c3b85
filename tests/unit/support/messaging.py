"""In-memory ports for unit tests of `MessagingService` (chat/domain/messaging.py), and a
reference model of what history must show.

Fakes, for unit tests only: each keeps the contract its port states in chat/domain/ports.py
(the contract suite holds the real stores to the same), in the plainest code that does, so a
test failure points at the service, not at storage. Integration tests use the real stores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from hypothesis import strategies as st

from chat.domain.accounts import Principal
from chat.domain.errors import Forbidden, NotFound, Unavailable
from chat.domain.limits import Limits
from chat.domain.messaging import MessagingService
from chat.domain.models import (
    AppendResult,
    Event,
    EventDraft,
    EventKind,
    LogRange,
    Message,
    RateCharge,
    User,
)
from chat.domain.persistence import ProgressInTheArchive
from chat.domain.ports import RateLimiter

CID = "c_test"


def principal(user_id: str) -> Principal:
    return Principal(User(user_id, user_id, user_id, 0), f"s_{user_id}")


class MemoryLog(ProgressInTheArchive):
    """EventLog: charge, dedupe, seq, trim with `complete=False` below the trimmed point."""

    def __init__(self, limiter: RateLimiter | None = None) -> None:
        self.limiter: RateLimiter = limiter if limiter is not None else Unlimited()
        self.events: dict[str, dict[int, Event]] = {}
        self.heads: dict[str, int] = {}
        self.trimmed_to: dict[str, int] = {}
        self._seen: dict[tuple[str, str, str], Event] = {}
        self.reads = 0

    async def append(self, draft: EventDraft, *, charge: RateCharge | None = None) -> AppendResult:
        if charge is not None:  # first, so a duplicate costs a token too
            wait = await self.limiter.allow(charge.key, charge.rate_per_s, charge.burst)
            if wait > 0:
                raise charge.refused(wait)
        key = (draft.conversation_id, draft.sender_id, draft.client_id)
        if key in self._seen:
            return AppendResult(self._seen[key], duplicate=True)
        cid = draft.conversation_id
        seq = self.heads.get(cid, 0) + 1
        self.heads[cid] = seq
        event = Event(
            cid, seq, draft.kind, draft.sender_id, draft.client_id, draft.body, draft.target_seq,
            1_000 * seq,
        )  # fmt: skip
        self.events.setdefault(cid, {})[seq] = event
        self._seen[key] = event
        return AppendResult(event, duplicate=False)

    async def start(self, conversation_id: str) -> None:
        self.heads.setdefault(conversation_id, 0)

    async def read(self, conversation_id: str, after_seq: int, limit: int) -> LogRange:
        self.reads += 1
        held = self.events.get(conversation_id, {})
        seqs = sorted(s for s in held if s > after_seq)[:limit]
        complete = after_seq >= self.trimmed_to.get(conversation_id, 0)
        return LogRange(tuple(held[s] for s in seqs), complete)

    async def last_seq(self, conversation_id: str) -> int:
        return self.heads.get(conversation_id, 0)

    async def trim(self, conversation_id: str, keep_after_seq: int) -> None:
        held = self.events.get(conversation_id, {})
        for seq in [s for s in held if s <= keep_after_seq]:
            del held[seq]
        self.trimmed_to[conversation_id] = max(
            self.trimmed_to.get(conversation_id, 0), keep_after_seq
        )

    async def backlog(self) -> list[str]:
        return sorted(c for c, last in self.heads.items() if last > self.trimmed_to.get(c, 0))

    async def settle(self) -> list[str]:
        return []  # appends commit in their own step: nothing is ever left unannounced


@dataclass
class _Stored:
    message: Message
    changed_by: int = 0


class MemoryArchive:
    """MessageArchive: every event, and messages with edits applied; `down` makes every call
    raise `Unavailable` as a store does when its server is unreachable."""

    def __init__(self) -> None:
        self.all_events: dict[str, dict[int, Event]] = {}
        self.messages: dict[str, dict[int, _Stored]] = {}
        self.marks: dict[str, int] = {}
        self.down = False
        self.calls = 0

    def _call(self) -> None:
        self.calls += 1
        if self.down:
            raise Unavailable("archive down", code="dependency_unavailable", dependency="archive")

    async def apply(self, events: Sequence[Event]) -> None:
        self._call()
        for ev in events:
            cid = ev.conversation_id
            self.all_events.setdefault(cid, {})[ev.seq] = ev
            stored = self.messages.setdefault(cid, {})
            target = stored.get(ev.target_seq) if ev.target_seq is not None else None
            if ev.kind is EventKind.MESSAGE and ev.seq not in stored:
                stored[ev.seq] = _Stored(
                    Message(cid, ev.seq, ev.sender_id, ev.client_id, ev.body, ev.ts)
                )
            elif ev.kind is EventKind.EDIT and target and not target.message.deleted:
                if target.changed_by < ev.seq:
                    target.message = replace(target.message, body=ev.body, edited_ts=ev.ts)
                    target.changed_by = ev.seq
            elif ev.kind is EventKind.DELETE and target:
                target.message = replace(target.message, body="", deleted=True, edited_ts=ev.ts)
                target.changed_by = max(target.changed_by, ev.seq)
            self.marks[cid] = max(self.marks.get(cid, 0), ev.seq)

    async def watermark(self, conversation_id: str) -> int:
        self._call()
        return self.marks.get(conversation_id, 0)

    async def watermarks(self, conversation_ids: Sequence[str]) -> dict[str, int]:
        self._call()
        return {cid: self.marks.get(cid, 0) for cid in conversation_ids}

    async def events(self, conversation_id: str, after_seq: int, limit: int) -> list[Event]:
        self._call()
        held = self.all_events.get(conversation_id, {})
        return [held[s] for s in sorted(s for s in held if s > after_seq)[:limit]]

    async def history(
        self, conversation_id: str, *, before: int | None, after: int | None, limit: int
    ) -> list[Message]:
        self._call()
        stored = self.messages.get(conversation_id, {})
        if after is not None:
            return [stored[s].message for s in sorted(s for s in stored if s > after)[:limit]]
        top = before if before is not None else 2**62
        return [stored[s].message for s in sorted(s for s in stored if s < top)[-limit:]]

    async def get(self, conversation_id: str, seq: int) -> Message | None:
        self._call()
        stored = self.messages.get(conversation_id, {}).get(seq)
        return stored.message if stored else None

    async def search(self, conversation_ids: Sequence[str], text: str, limit: int) -> list[Message]:
        self._call()
        found = [
            s.message
            for c in conversation_ids
            for s in self.messages.get(c, {}).values()
            if not s.message.deleted and text.casefold() in s.message.body.casefold()
        ]
        return sorted(found, key=lambda m: (m.ts, m.seq), reverse=True)[:limit]

    async def count_from_others(
        self, conversation_id: str, user_id: str, after_seq: int, up_to_seq: int
    ) -> int:
        self._call()
        return sum(
            1
            for seq, s in self.messages.get(conversation_id, {}).items()
            if after_seq < seq <= up_to_seq
            and s.message.sender_id != user_id
            and not s.message.deleted
        )

    async def record_watermarks(self, marks: Mapping[str, int]) -> None:
        self._call()
        for cid, seq in marks.items():
            self.marks[cid] = max(self.marks.get(cid, 0), seq)

    async def delete_older_than(self, ts: int) -> int:
        return 0


class Members:
    """ConversationStore: only what MessagingService asks (membership, read pointers)."""

    def __init__(self, members: dict[str, set[str]]) -> None:
        self.members = members
        self.read: dict[tuple[str, str], int] = {}

    async def is_member(self, conversation_id: str, user_id: str) -> bool:
        return user_id in self.members.get(conversation_id, set())

    async def conversation_ids_for_user(self, user_id: str) -> list[str]:
        return sorted(c for c, users in self.members.items() if user_id in users)

    async def set_read(self, conversation_id: str, user_id: str, seq: int) -> int:
        key = (conversation_id, user_id)
        self.read[key] = max(self.read.get(key, 0), seq)
        return self.read[key]


class Published:
    """Bus and JobQueue: records what was published and queued."""

    def __init__(self) -> None:
        self.frames: list[tuple[str, bytes]] = []
        self.queued: list[str] = []

    async def publish(self, channel: str, payload: bytes) -> None:
        self.frames.append((channel, payload))

    async def persist_batch(self, token: str) -> None:
        self.queued.append(token)


class Unlimited:
    async def allow(self, key: str, rate_per_s: float, burst: int) -> float:
        return 0.0


@dataclass
class World:
    service: MessagingService
    log: MemoryLog
    archive: MemoryArchive
    published: Published


def world(
    *, users: Sequence[str] = ("alice", "bob"), limiter: RateLimiter | None = None, **limits: int
) -> World:
    """`limiter` (default: none) is shared by the service and the log, as the stores do."""
    limiter = limiter if limiter is not None else Unlimited()
    log, archive, published = MemoryLog(limiter), MemoryArchive(), Published()
    service = MessagingService(
        Members({CID: set(users)}),  # the part of ConversationStore the service uses
        log,
        archive,
        published,  # as the Bus
        published,
        limiter,
        Limits(**limits),
    )
    return World(service, log, archive, published)


@dataclass
class Reference:
    """What history must show after a run of events: the plainest fold there is."""

    events: list[Event] = field(default_factory=list)

    def add(self, event: Event) -> None:
        assert event.seq == len(self.events) + 1, "seq must be 1, 2, 3, ... without gaps"
        self.events.append(event)

    def messages(self) -> list[Message]:
        by_seq: dict[int, Message] = {}
        for ev in self.events:
            if ev.kind is EventKind.MESSAGE:
                by_seq[ev.seq] = Message(
                    ev.conversation_id, ev.seq, ev.sender_id, ev.client_id, ev.body, ev.ts
                )
            elif ev.target_seq in by_seq:
                old = by_seq[ev.target_seq]
                if ev.kind is EventKind.DELETE:
                    by_seq[ev.target_seq] = replace(old, body="", deleted=True, edited_ts=ev.ts)
                elif not old.deleted:
                    by_seq[ev.target_seq] = replace(old, body=ev.body, edited_ts=ev.ts)
        return [by_seq[s] for s in sorted(by_seq)]

    def live(self, seq: int) -> Message | None:
        """The message at `seq` when it exists and is not deleted."""
        return next((m for m in self.messages() if m.seq == seq and not m.deleted), None)


USERS = ("alice", "bob")


@dataclass(frozen=True)
class Op:
    kind: str  # send | edit | delete | retry | persist
    user: str = "alice"
    target: int = 0  # edit/delete: how far back from the newest seq; retry: which success
    body: str = ""


ops = st.lists(
    st.one_of(
        st.builds(Op, st.just("send"), st.sampled_from(USERS), body=st.sampled_from("abc")),
        st.builds(
            Op,
            st.sampled_from(("edit", "delete")),
            st.sampled_from(USERS),
            st.integers(-1, 6),
            st.sampled_from("xyz"),
        ),
        st.builds(Op, st.just("retry"), target=st.integers(0, 30)),
        st.builds(Op, st.just("persist")),
    ),
    max_size=30,
)


async def run(w: World, script: list[Op], batch: int = 2) -> Reference:
    """Drive the service through `script`, checking each answer against the reference model;
    returns the reference of what was appended."""
    ref = Reference()
    done: list[tuple[Op, str, AppendResult]] = []
    for n, op in enumerate(script):
        who = principal(op.user)
        cmid = f"{op.kind}-{n}"
        if op.kind == "persist":
            await w.service.persist(CID, batch=batch)
            continue
        if op.kind in ("edit", "delete"):
            # `target` counts back from the newest event, so most frames aim at recent
            # messages (some at edits, deletes or seqs not assigned yet: refused).
            op = replace(op, target=max(1, len(ref.events) - op.target))
        if op.kind == "retry":
            if not done:
                continue
            op, cmid, first = done[op.target % len(done)]
            who = principal(op.user)
        refused, result = await _attempt(w, who, op, cmid)
        retry = script[n].kind == "retry"
        live = ref.live(op.target) if op.kind != "send" else None
        if refused == "message_not_found":
            if retry:
                # A retried edit/delete whose target is gone is answered from the hot log;
                # once its original was trimmed from it, it is a new frame on a gone target.
                assert live is None
                assert first.event.seq not in w.log.events.get(CID, {})
            else:
                assert live is None, f"{op}: the message is live"
        elif refused == "not_author":
            assert live is not None and live.sender_id != op.user
        elif retry:
            assert result == AppendResult(first.event, duplicate=True)
        else:
            assert result is not None and not result.duplicate
            if op.kind != "send":
                assert live is not None and live.sender_id == op.user, f"{op} was accepted"
            ref.add(result.event)
            done.append((op, cmid, result))
    return ref


async def _attempt(
    w: World, who: Principal, op: Op, cmid: str
) -> tuple[str | None, AppendResult | None]:
    """(the refusal's code, None) or (None, the result)."""
    try:
        if op.kind == "send":
            return None, await w.service.send(who, CID, cmid, op.body)
        if op.kind == "edit":
            return None, await w.service.edit(who, CID, op.target, cmid, op.body)
        return None, await w.service.delete(who, CID, op.target, cmid)
    except (NotFound, Forbidden) as exc:
        return exc.code, None
