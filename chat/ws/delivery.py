"""Per-connection, per-conversation delivery cursors: the piece that makes delivery exactly-once
and gap-free over an at-most-once bus.

Each subscribed conversation has a cursor (the last seq this socket was sent). A live event
with seq == cursor + 1 is written at once; seq <= cursor is a duplicate and dropped; a larger
seq means something was missed (a lost pub/sub message, a resume, a bus reset), so the gap is
filled from the log in order before anything newer goes out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from chat.domain.models import Event

log = logging.getLogger(__name__)

Fetch = Callable[[str, int], Awaitable[tuple[tuple[Event, ...], bool]]]
"""(conversation, after_seq) -> (events in order, recoverable)."""

REPLAY_CHUNK_EVENTS = 64
REPLAY_CHUNK_BYTES = 64 * 1024
"""A replay (resume, refill) awaits `drain` after this many events or bytes: written in one loop,
a page of up to `replay_max_events` would sit in the socket's queue at once and trip the
slow-consumer limit even for a reader at full speed."""


FILL_RETRY_FIRST_S = 0.05
FILL_RETRY_MAX_S = 2.0
"""Backoff of a background refill whose log read failed (the log's store is down)."""


async def _no_drain() -> None:
    return None


@dataclass(slots=True)
class Cursor:
    seq: int
    filling: bool = False
    refill: bool = False


class DeliveryCursors:
    __slots__ = (
        "_chunk_bytes",
        "_chunk_events",
        "_drain",
        "_encode",
        "_fetch",
        "_gap",
        "_lost",
        "_tasks",
        "_write",
        "_write_replayed",
        "cursors",
    )

    def __init__(
        self,
        write: Callable[[bytes, int], None],
        encode: Callable[[Event], bytes],
        fetch: Fetch,
        lost: Callable[[str], Awaitable[int]],
        drain: Callable[[], Awaitable[None]] = _no_drain,
        chunk_events: int = REPLAY_CHUNK_EVENTS,
        chunk_bytes: int = REPLAY_CHUNK_BYTES,
        gap: Callable[[], None] = lambda: None,
        write_replayed: Callable[[bytes, int], None] | None = None,
    ) -> None:
        self._write = write  # (frame, event ts) -> None
        self._encode = encode
        self._fetch = fetch
        # The range could not be recovered: tell the client to reload; returns the seq to
        # continue live delivery from.
        self._lost = lost
        # Waits until the socket's queue has room again (backpressure for replays).
        self._drain = drain
        self._chunk_events = chunk_events
        self._chunk_bytes = chunk_bytes
        self._gap = gap  # counts live events that arrived past a gap (metrics)
        # Events read back from the log (resume, gap fill) go here: the same write, but the
        # gateway keeps them out of the live-latency histogram.
        self._write_replayed = write_replayed or write
        self.cursors: dict[str, Cursor] = {}
        self._tasks: set[asyncio.Task[bool]] | None = None  # made on the first refill

    def track(self, conversation_id: str, seq: int) -> None:
        self.cursors[conversation_id] = Cursor(seq)

    def forget(self, conversation_id: str) -> None:
        self.cursors.pop(conversation_id, None)

    def live(self, conversation_id: str, seq: int, ts: int, frame: bytes) -> None:
        cursor = self.cursors.get(conversation_id)
        if cursor is None or seq <= cursor.seq:
            return
        if seq == cursor.seq + 1 and not cursor.filling:
            cursor.seq = seq
            self._write(frame, ts)
            return
        if not cursor.filling:
            self._gap()
        self.fill(conversation_id)

    def fill(self, conversation_id: str) -> None:
        """Catch up from the log in the background (at most one fill per conversation)."""
        cursor = self.cursors.get(conversation_id)
        if cursor is None:
            return
        if cursor.filling:
            cursor.refill = True
            return
        cursor.filling = True
        task = asyncio.create_task(self._fill(conversation_id, cursor, retry=True))
        if self._tasks is None:
            self._tasks = set()
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def catch_up(self, conversation_id: str, from_seq: int) -> bool:
        """Resume: move the cursor to the client's position and replay what follows. Returns
        False when that range is not recoverable (the client must reload history)."""
        cursor = Cursor(from_seq, filling=True)
        self.cursors[conversation_id] = cursor
        return await self._fill(conversation_id, cursor)

    async def _fill(self, conversation_id: str, cursor: Cursor, retry: bool = False) -> bool:
        """Replay from the log after `cursor.seq`. A `resume` (retry False) lets a failed read
        raise, so the client gets `dependency_unavailable`; a background fill (retry True) has
        no one to tell, so it retries with bounded backoff until it succeeds or the cursor is
        gone: an event it was asked to fetch is never left waiting for a later one."""
        recoverable = True
        delay = FILL_RETRY_FIRST_S
        try:
            while True:
                cursor.refill = False
                try:
                    events, ok = await self._fetch(conversation_id, cursor.seq)
                    if self.cursors.get(conversation_id) is not cursor:
                        return recoverable  # unsubscribed or replaced meanwhile
                    if not ok:
                        # Not max(): a client claiming a seq above the conversation's last_seq
                        # must come down to it, or later live events (seq <= its claim) would
                        # be dropped as duplicates forever.
                        recoverable = False
                        cursor.seq = await self._lost(conversation_id)
                        events = ()
                except Exception as exc:
                    if not retry:
                        raise
                    log.warning(
                        "refill of conversation %s failed (%s); retrying in %.2fs",
                        conversation_id,
                        exc,
                        delay,
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, FILL_RETRY_MAX_S)
                    if self.cursors.get(conversation_id) is not cursor:
                        return recoverable
                    cursor.refill = True
                    continue
                delay = FILL_RETRY_FIRST_S
                chunk_events = chunk_bytes = 0
                for event in events:
                    if event.seq != cursor.seq + 1:
                        continue
                    if chunk_events >= self._chunk_events or chunk_bytes >= self._chunk_bytes:
                        chunk_events = chunk_bytes = 0
                        await self._drain()
                        if self.cursors.get(conversation_id) is not cursor:
                            return recoverable
                    frame = self._encode(event)
                    cursor.seq = event.seq
                    self._write_replayed(frame, event.ts)
                    chunk_events += 1
                    chunk_bytes += len(frame)
                if not cursor.refill:
                    break
        finally:
            cursor.filling = False
        return recoverable

    def cancel(self) -> None:
        for task in self._tasks or ():
            task.cancel()
