"""Domain records. Plain frozen dataclasses: cheap to build, safe to share between tasks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from chat.domain.errors import RateLimited


class ConversationKind(StrEnum):
    DIRECT = "direct"
    GROUP = "group"


class Role(StrEnum):
    OWNER = "owner"
    MEMBER = "member"


class EventKind(StrEnum):
    """Everything that happens in a conversation is an event with its own `seq`.

    Edits and deletes are events too, so a client that resumes from a `seq` sees them in order
    and never misses one (a message edited while you were offline arrives as an `edit`).
    """

    MESSAGE = "message"
    EDIT = "edit"
    DELETE = "delete"


class PresenceState(StrEnum):
    ONLINE = "online"
    IDLE = "idle"
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class User:
    id: str
    username: str
    display_name: str
    created_at: int
    disabled: bool = False
    is_admin: bool = False


@dataclass(frozen=True, slots=True)
class Credentials:
    user: User
    password_hash: str


@dataclass(frozen=True, slots=True)
class Member:
    user_id: str
    role: Role
    read_seq: int
    joined_at: int


@dataclass(frozen=True, slots=True)
class Conversation:
    id: str
    kind: ConversationKind
    title: str
    created_by: str
    created_at: int
    members: tuple[Member, ...] = field(default=())

    def member(self, user_id: str) -> Member | None:
        for m in self.members:
            if m.user_id == user_id:
                return m
        return None


@dataclass(frozen=True, slots=True)
class EventDraft:
    """What a sender asks for; the log turns it into an `Event` by assigning `seq` and `ts`."""

    conversation_id: str
    kind: EventKind
    sender_id: str
    client_id: str
    body: str
    target_seq: int | None = None


@dataclass(frozen=True, slots=True)
class RateCharge:
    """One token from a user's bucket, taken by `EventLog.append` in the same step as the
    append (chat/domain/ports.py): the same bucket a `RateLimiter` keeps under `key`."""

    key: str  # the bucket, e.g. `send:<user id>`
    rate_per_s: float  # refill, tokens per second
    burst: int  # capacity; a fresh bucket is full

    def refused(self, wait_s: float) -> RateLimited:
        """The error for an empty bucket: a token is back in `wait_s` seconds."""
        return RateLimited("too many messages; slow down", retry_after_ms=int(wait_s * 1000) + 1)


@dataclass(frozen=True, slots=True)
class Event:
    conversation_id: str
    seq: int
    kind: EventKind
    sender_id: str
    client_id: str
    body: str
    target_seq: int | None
    ts: int  # milliseconds since the epoch, server clock

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Event:
        """From its stored form (`frames.event_dict`'s keys: the log's frames, the archive's
        documents). A missing `target_seq` is None: FerretDB may drop null fields."""
        return cls(
            d["conversation_id"],
            d["seq"],
            EventKind(d["kind"]),
            d["sender_id"],
            d["client_id"],
            d["body"],
            d.get("target_seq"),
            d["ts"],
        )


@dataclass(frozen=True, slots=True)
class AppendResult:
    event: Event
    duplicate: (
        bool  # True when the (sender, client_id) pair was seen before: `event` is the original
    )
    persist_job: str | None = None
    """Set when this append made its conversation dirty, found no persistence job scheduled
    and claimed the schedule: the caller must queue one batch job with this token
    (`JobQueue.persist_batch`). None for every other append, so a burst of sends queues one
    job (chat/domain/persistence.py)."""


@dataclass(frozen=True, slots=True)
class LogRange:
    """Events after a `seq`, in order. `complete` is False when the log no longer holds the start
    of the range (trimmed or lost), so the caller must look elsewhere or report a gap."""

    events: tuple[Event, ...]
    complete: bool


@dataclass(frozen=True, slots=True)
class Message:
    """A message as history shows it: edits and deletes already applied."""

    conversation_id: str
    seq: int
    sender_id: str
    client_id: str
    body: str
    ts: int
    edited_ts: int | None = None
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class Presence:
    user_id: str
    state: PresenceState
    last_seen: int | None  # ms since the epoch; None when never seen


@dataclass(frozen=True, slots=True)
class RefreshOutcome:
    """Result of presenting a refresh token: `user_id` set on success."""

    user_id: str | None
    reused: bool = False  # a rotated token came back: the family is revoked
    retried: bool = False  # the rotation just made was asked for again within the grace window


@dataclass(frozen=True, slots=True)
class ExternalIdentity:
    """A person as an OpenID Provider vouches for them: (issuer, subject) is the stable key."""

    issuer: str
    subject: str
    preferred_username: str | None
    name: str | None
