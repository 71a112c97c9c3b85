"""History pages, and how they degrade when the archive is down (guarantee 5: an archive outage
delays history, not chat).

A page is built from the archive with the log's not-yet-archived tail folded in. When the
archive is unavailable the page comes from the hot log alone, which holds every event not yet
archived plus the last `log_keep_events` archived ones: the recent past, exact, and marked
`archive_unavailable` so clients know that older pages cannot be had until it is back. After one
failure the archive is skipped for `ArchiveBreaker.cooloff_s`, so a down archive (whose driver
waits seconds to give up) costs one slow request, not every request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from chat.domain.errors import Unavailable
from chat.domain.models import Event, EventKind, Message


@dataclass(frozen=True, slots=True)
class HistoryPage:
    messages: list[Message]
    archive_unavailable: bool = False
    """True when the archive could not be reached and the page comes from the hot log only."""


class ArchiveDown(Unavailable):
    """The archive is unavailable (or was, moments ago): serve from the log instead."""

    code = "dependency_unavailable"


class ArchiveBreaker:
    def __init__(self, cooloff_s: float = 10.0, clock: Callable[[], float] = time.monotonic):
        self.cooloff_s = cooloff_s
        self._clock = clock
        self._until = 0.0

    @property
    def tripped(self) -> bool:
        return self._clock() < self._until

    def trip(self) -> None:
        self._until = self._clock() + self.cooloff_s


def fold(cid: str, by_seq: dict[int, Message], events: Iterable[Event]) -> dict[int, Message]:
    """Apply log events to messages by seq: new messages, then edits and deletes of any message
    present (an edit never revives a deleted message)."""
    events = list(events)
    for ev in events:
        if ev.kind is EventKind.MESSAGE:
            by_seq[ev.seq] = Message(cid, ev.seq, ev.sender_id, ev.client_id, ev.body, ev.ts)
    for ev in events:
        if ev.target_seq is None or ev.target_seq not in by_seq:
            continue
        old = by_seq[ev.target_seq]
        if ev.kind is EventKind.EDIT and not old.deleted:
            by_seq[ev.target_seq] = replace(old, body=ev.body, edited_ts=ev.ts)
        elif ev.kind is EventKind.DELETE:
            by_seq[ev.target_seq] = replace(old, body="", deleted=True, edited_ts=ev.ts)
    return by_seq


def choose(
    by_seq: dict[int, Message], *, before: int | None, after: int | None, limit: int
) -> list[Message]:
    """The page in ascending seq: the first `limit` after `after`, else the last `limit` before
    `before` (or the newest)."""
    seqs = sorted(
        s for s in by_seq if (before is None or s < before) and (after is None or s > after)
    )
    chosen = seqs[:limit] if after is not None else seqs[-limit:]
    return [by_seq[s] for s in chosen]
