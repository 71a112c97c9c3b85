"""The narrow interfaces the domain needs from storage, fan-out and queues.

Two families implement them: `chat.stores.embedded` (SQLite, in-process bus) and the cluster
stores (Redis, PostgreSQL, MongoDB). One contract suite (tests/contract) runs unchanged against
both, so every guarantee written here is tested, not just hoped for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from chat.domain.models import (
    AppendResult,
    Conversation,
    ConversationKind,
    Credentials,
    Event,
    EventDraft,
    LogRange,
    Message,
    Presence,
    PresenceState,
    RateCharge,
    RefreshOutcome,
    Role,
    User,
)


class AccountStore(Protocol):
    """Users and their credentials (PostgreSQL / SQLite)."""

    async def create_user(
        self, user: User, password_hash: str
    ) -> None:  # raises Conflict(code="username_taken")
        ...

    async def credentials_by_username(self, username: str) -> Credentials | None: ...

    async def get_user(self, user_id: str) -> User | None: ...

    async def get_users(self, user_ids: Sequence[str]) -> list[User]: ...

    async def find_by_username(self, username: str) -> User | None: ...

    async def search_users(self, prefix: str, limit: int) -> list[User]:
        """At most `limit` active (not disabled) users whose username, display name or a
        space-separated word of the display name starts with `prefix`, compared without case
        (Unicode lower case) and literally (no pattern characters); usernames starting with it
        first, then by username."""
        ...

    async def set_disabled(self, user_id: str, disabled: bool) -> bool:
        """False when the user does not exist."""
        ...

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        """Used to upgrade a hash whose parameters are outdated."""
        ...

    async def user_by_identity(self, issuer: str, subject: str) -> User | None:
        """The user linked to an OpenID Provider identity, if any."""
        ...

    async def create_linked_user(self, user: User, issuer: str, subject: str) -> None:
        """Create a user with no password, linked to the identity, in one transaction.
        Raises Conflict(code="username_taken") when the username is taken."""
        ...


class ConversationStore(Protocol):
    """Conversations, membership and read pointers (PostgreSQL / SQLite)."""

    async def create(self, conversation: Conversation, direct_key: str | None) -> Conversation:
        """Create it with its members. For a direct conversation `direct_key` identifies the pair:
        when one exists already for that key, that one is returned instead (one DM per pair)."""
        ...

    async def get(self, conversation_id: str) -> Conversation | None: ...

    async def list_for_user(self, user_id: str) -> list[Conversation]: ...

    async def conversation_ids_for_user(self, user_id: str) -> list[str]: ...

    async def add_member(self, conversation_id: str, user_id: str, role: Role, now: int) -> bool:
        """False when already a member."""
        ...

    async def remove_member(self, conversation_id: str, user_id: str) -> bool:
        """False when not a member."""
        ...

    async def is_member(self, conversation_id: str, user_id: str) -> bool: ...

    async def set_read(self, conversation_id: str, user_id: str, seq: int) -> int:
        """Move the read pointer forward only; returns the pointer after the call."""
        ...

    async def kinds(self) -> dict[ConversationKind, int]:
        """Count of conversations by kind, for metrics."""
        ...


class EventLog(Protocol):
    """The durable, ordered hot log of each conversation (Redis stream / SQLite).

    Guarantees, all tested by the contract suite:
    - `append` is atomic: deduplicate on (conversation, sender, client_id), assign the next
      `seq` (1, 2, 3, ... with no gaps), store durably, and publish the event's frame on the
      conversation's bus channel, in that order, so subscribers see events in `seq` order. The
      caller may ack the sender once `append` returns. An event is never read or published
      before it is as durable as an ack promises (with Redis replicas: on them, see
      docs/cluster.md "Acked means replicated"), so nothing a reader saw can vanish.
    - A duplicate returns the original event with `duplicate=True` and publishes nothing.
    - `read` returns events with seq > `after_seq` in order; `complete` is False when the start of
      that range is no longer held (trimmed), never a silent gap.
    - With a `charge`, `append` first takes one token from that bucket (the `RateLimiter`'s,
      same key, same arithmetic), in the same atomic step and before deduplication, so a send
      costs one store round trip. An empty bucket raises `RateLimited` (`retry_after_ms` > 0)
      and nothing is written, no seq used. A retried duplicate costs a token like any send (a
      client's retry can be rate limited; docs/protocol.md); a store's own re-send of one call
      (a lost reply) is not charged again.
    """

    async def append(
        self, draft: EventDraft, *, charge: RateCharge | None = None
    ) -> AppendResult: ...

    async def start(self, conversation_id: str) -> None:
        """Begin the log of a conversation just created, at seq 0, without consulting the
        archive (which a log that lost its state must ask where to continue): so conversations
        can be created and used while the archive is down. A no-op when the log exists."""
        ...

    async def read(self, conversation_id: str, after_seq: int, limit: int) -> LogRange: ...

    async def read_many(self, ranges: Sequence[tuple[str, int]], limit: int) -> list[LogRange]:
        """`read` of each (conversation_id, after_seq), in order, in as few round trips as the
        store allows (a batch job reads all its conversations at once)."""
        ...

    async def last_seq(self, conversation_id: str) -> int: ...

    async def trim(self, conversation_id: str, keep_after_seq: int) -> None:
        """Forget events with seq <= `keep_after_seq` (already archived and old enough)."""
        ...

    async def backlog(self) -> dict[str, int]:
        """Conversations whose log holds events, each with its last (committed) seq as
        `last_seq` has it, for the sweep that archives forgotten ones: one read for all of
        them, not a `last_seq` round trip per conversation per sweep."""
        ...

    async def archived(self, conversation_ids: Sequence[str]) -> list[int | None]:
        """Each conversation's archive progress as the log records it (`mark_archived`): every
        event up to it is in the archive. None where the log records none (a log head written
        before this was kept, or a log that leaves it to the archive's own watermark): ask
        `MessageArchive.watermarks`. In as few round trips as the store allows."""
        ...

    async def read_unarchived(
        self, conversation_ids: Sequence[str], limit: int
    ) -> list[tuple[int, LogRange] | None]:
        """The persistence worker's read: for each conversation, its `archived` record and
        `read(cid, record, limit)`, in one round trip. None where there is no record (ask the
        archive's watermark and `read_many`)."""
        ...

    async def mark_archived(self, progress: Mapping[str, int]) -> None:
        """Record that the archive now holds each conversation's events up to the given seq
        (called after `MessageArchive.apply` returned). Only ever moves a record up."""
        ...

    async def settle(self) -> list[str]:
        """For the sweep: announce events a writer left written but unannounced (a log that
        commits only once replicas hold an event, and a writer that died in between). The
        conversations whose commit point moved; a log without that step returns []."""
        ...

    # The persistence signal (chat/domain/persistence.py). `append` itself adds the
    # conversation to the dirty set and, when that made it dirty and no batch job is
    # scheduled, claims the schedule for a fresh token (`AppendResult.persist_job`), in the
    # same atomic step as the append: so a send costs no extra round trip and a burst of sends
    # queues one job. An append into a conversation already dirty claims nothing, even with
    # the schedule free (its job could not be queued, or was lost): the sweep, or the next
    # append that makes some conversation dirty, queues one then.

    async def take_dirty(self, limit: int) -> list[str]:
        """Remove and return up to `limit` dirty conversations, oldest first. Atomic: two
        workers never get the same entry (an append after the take marks it dirty again)."""
        ...

    async def mark_dirty(self, conversation_ids: Sequence[str]) -> None:
        """Add conversations to the dirty set (kept where already there): the sweep's lagging
        ones, a failed job's, or one whose backlog did not fit in one job."""
        ...

    async def claim_persist(self, token: str, *, take_over: bool) -> bool:
        """Make `token` the scheduled job's; without `take_over` only when none is scheduled.
        True when the caller now holds it and must queue the job."""
        ...

    async def persist_continue(self, token: str) -> bool:
        """A batch job with `token` has finished. Atomically: when another token holds the
        schedule, False (that job carries on); when the dirty set is empty, release the
        schedule, False; otherwise keep (or retake) it for `token`, True: queue the next job.
        No append can fall between the emptiness check and the release."""
        ...

    async def release_persist(self, token: str) -> None:
        """Give the schedule up if `token` holds it (its job could not be queued)."""
        ...


class MessageArchive(Protocol):
    """Long-term message storage (MongoDB / SQLite), fed by the persistence worker.

    `apply` is idempotent: applying the same events again (a retried job) changes nothing, and
    an edit never overwrites a later edit.
    """

    async def apply(self, events: Sequence[Event]) -> None:
        """Store the events. Whether this also moves the watermarks is the store's choice
        (SQLite: in the same transaction; MongoDB: no, see `record_watermarks`)."""
        ...

    async def record_watermarks(self, marks: Mapping[str, int]) -> None:
        """Move each conversation's watermark up to the given seq (never down), once its events
        are applied. The cluster's persistence worker records its progress in the log instead
        (`EventLog.mark_archived`) and writes these only from the periodic sweep, so they lag
        the archive by up to a sweep interval: a lower bound, kept for recovery after the log
        lost its data."""
        ...

    async def watermark(self, conversation_id: str) -> int:
        """The highest seq recorded as applied (a lower bound: events after it may be in the
        archive already, or still only in the log)."""
        ...

    async def watermarks(self, conversation_ids: Sequence[str]) -> dict[str, int]:
        """`watermark` of each conversation (0 when none), in one round trip."""
        ...

    async def events(self, conversation_id: str, after_seq: int, limit: int) -> list[Event]: ...

    async def history(
        self, conversation_id: str, *, before: int | None, after: int | None, limit: int
    ) -> list[Message]:
        """Messages (edits applied) in ascending seq. With `after`: the first `limit` after it;
        otherwise the last `limit` before `before` (or the newest)."""
        ...

    async def get(self, conversation_id: str, seq: int) -> Message | None: ...

    async def search(self, conversation_ids: Sequence[str], text: str, limit: int) -> list[Message]:
        """Case-insensitive substring search over live (not deleted) messages, newest first."""
        ...

    async def count_from_others(
        self, conversation_id: str, user_id: str, after_seq: int, up_to_seq: int
    ) -> int:
        """Live messages with `after_seq` < seq <= `up_to_seq` not sent by `user_id` (unread
        counts: the caller counts what lies above `up_to_seq` from the log)."""
        ...

    async def delete_older_than(self, ts: int) -> int:
        """Retention: drop messages older than `ts` (ms); returns how many."""
        ...


class Listener(Protocol):
    """Receives what a bus subscription delivers. Called on the subscriber's event loop.

    A listener may also define `on_disconnect()`: called when the connection is lost, before
    the `on_reset` that follows the resubscription (the gateway drops its membership cache)."""

    def on_message(self, channel: str, payload: bytes) -> None: ...

    def on_reset(self) -> None:
        """The subscription was interrupted (broker restart, output buffer overflow): messages
        may have been missed, so every client must resume from the log."""
        ...


class Subscription(Protocol):
    async def subscribe(self, channels: Sequence[str]) -> None: ...

    async def unsubscribe(self, channels: Sequence[str]) -> None: ...

    async def close(self) -> None: ...


class Bus(Protocol):
    """Fan-out between processes (Redis pub/sub / in-process). At most once; the log is what makes
    delivery exactly-once for clients, by `seq`."""

    async def publish(self, channel: str, payload: bytes) -> None: ...

    async def open(self, listener: Listener) -> Subscription: ...


class SessionStore(Protocol):
    """Refresh-token families (Redis / SQLite). Only hashes of tokens are stored."""

    async def create(self, family_id: str, user_id: str, token_hash: str, ttl_s: int) -> None: ...

    async def rotate(
        self, family_id: str, presented_hash: str, new_hash: str, ttl_s: int, *, grace_s: float = 0
    ) -> RefreshOutcome:
        """Atomically: when `presented_hash` is the family's current token, replace it with
        `new_hash`. When it is the token replaced by the family's latest rotation, less than
        `grace_s` ago, and `new_hash` is that rotation's result (the caller derives it from the
        presented token, so a retry asks for the same one), answer `retried` and change nothing:
        the benign race of two tabs, or a client whose answer was lost. Any other token the
        family had before revokes the whole family (theft detection)."""
        ...

    async def is_active(self, family_id: str) -> bool: ...

    async def revoke(self, family_id: str) -> None: ...

    async def revoke_user(self, user_id: str) -> list[str]:
        """Revoke every family of the user; returns their ids."""
        ...


class PresenceStore(Protocol):
    """Live connections and last-seen times (Redis sorted sets and leases / memory with a
    clock). A connection counts as live while its own TTL holds and, where several processes
    share the store, while the lease of the process holding it does (`renew`)."""

    async def connect(self, user_id: str, connection_id: str, ttl_s: float) -> int:
        """Register a connection; returns the user's live connection count including it."""
        ...

    async def heartbeat(
        self, user_id: str, connection_id: str, state: PresenceState | None, ttl_s: float
    ) -> None:
        """Extend the connection's life by `ttl_s`; with a `state`, also set it. None is the
        periodic refresh: the state stays what the client last set (a connection the store no
        longer holds, having outlived its TTL, comes back online)."""
        ...

    async def disconnect(self, user_id: str, connection_id: str) -> int:
        """Returns the user's remaining live connections."""
        ...

    async def get(self, user_ids: Sequence[str]) -> dict[str, Presence]:
        """Connections whose TTL ran out, or whose process's lease did, count as gone: a
        crashed gateway cannot leave a user online forever."""
        ...

    async def renew(self, ttl_s: float) -> None:
        """This process is alive: its connections stay live for `ttl_s` more even if it is
        never heard from again (the gateway's heartbeat). In-process stores, whose connections
        die with the process, keep no lease."""
        ...

    async def release(self) -> None:
        """This process stops: whatever connections it still holds count as gone now."""
        ...


class RateLimiter(Protocol):
    async def allow(self, key: str, rate_per_s: float, burst: int) -> float:
        """Token bucket: 0.0 when allowed, else seconds until a token is available."""
        ...


class JobQueue(Protocol):
    """Side work handed to workers (Dramatiq). Enqueueing must be cheap and non-blocking."""

    async def persist_batch(self, token: str) -> None:
        """Queue one persistence batch job carrying `token` (it drains the dirty set, see
        `EventLog.persist_continue`). Raises when the job could not be queued."""
        ...
