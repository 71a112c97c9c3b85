"""Delivery cursors: duplicates dropped, gaps filled in order from the log, unrecoverable
ranges reported. The log is a small in-memory function here: this is a unit test of one class."""

from __future__ import annotations

import asyncio

import pytest

from chat.domain.frames import event_frame
from chat.domain.models import Event, EventKind
from chat.ws.delivery import DeliveryCursors


def ev(seq: int) -> Event:
    return Event("c", seq, EventKind.MESSAGE, "u", f"m{seq}", "b", None, 0)


class Harness:
    def __init__(self, log_upto: int, recoverable: bool = True) -> None:
        self.log = [ev(s) for s in range(1, log_upto + 1)]
        self.recoverable = recoverable
        self.written: list[int] = []
        self.lost: list[str] = []
        self.cursors = DeliveryCursors(self.write, event_frame, self.fetch, self.on_lost)

    def write(self, frame: bytes, ts: int) -> None:
        import json

        self.written.append(json.loads(frame)["seq"])

    async def fetch(self, cid: str, after: int) -> tuple[tuple[Event, ...], bool]:
        await asyncio.sleep(0)
        return tuple(e for e in self.log if e.seq > after), self.recoverable

    async def on_lost(self, cid: str) -> int:
        self.lost.append(cid)
        return len(self.log)


async def settle(h: Harness) -> None:
    for _ in range(100):
        if not any(c.filling for c in h.cursors.cursors.values()):
            return
        await asyncio.sleep(0)


async def test_in_order_written_duplicates_dropped() -> None:
    h = Harness(3)
    h.cursors.track("c", 0)
    for s in (1, 2, 2, 1, 3):
        h.cursors.live("c", s, 0, event_frame(ev(s)))
    assert h.written == [1, 2, 3]


async def test_gap_is_filled_from_log_before_newer_events() -> None:
    h = Harness(6)
    h.cursors.track("c", 1)
    h.cursors.live("c", 4, 0, event_frame(ev(4)))  # 2 and 3 were lost on the bus
    h.cursors.live("c", 5, 0, event_frame(ev(5)))  # arrives while filling
    await settle(h)
    h.cursors.live("c", 6, 0, event_frame(ev(6)))
    assert h.written == [2, 3, 4, 5, 6]


async def test_catch_up_replays_exactly_after_position() -> None:
    h = Harness(5)
    h.cursors.track("c", 5)
    assert await h.cursors.catch_up("c", 2)
    assert h.written == [3, 4, 5]


async def test_unrecoverable_range_reported_then_live_continues() -> None:
    h = Harness(5, recoverable=False)
    h.cursors.track("c", 0)
    assert not await h.cursors.catch_up("c", 0)
    assert h.lost == ["c"]
    assert h.cursors.cursors["c"].seq == 5
    h.cursors.live("c", 6, 0, event_frame(ev(6)))
    assert h.written == [6]


async def test_untracked_conversation_ignored() -> None:
    h = Harness(1)
    h.cursors.live("other", 1, 0, event_frame(ev(1)))
    assert h.written == []


async def test_background_fill_retries_until_the_log_answers() -> None:
    """A refill whose log read fails (its store is down) is retried, not dropped with a
    "Task exception was never retrieved"; a resume's read failure is raised to the caller."""
    h = Harness(3)
    failures = [ConnectionError("down"), ConnectionError("still down")]
    real_fetch = h.fetch

    async def flaky(cid: str, after: int) -> tuple[tuple[Event, ...], bool]:
        if failures:
            raise failures.pop(0)
        return await real_fetch(cid, after)

    h.cursors = DeliveryCursors(h.write, event_frame, flaky, h.on_lost)
    h.cursors.track("c", 0)
    h.cursors.fill("c")
    for _ in range(500):
        if h.written == [1, 2, 3]:
            break
        await asyncio.sleep(0.01)
    assert h.written == [1, 2, 3] and not failures
    failures.append(ConnectionError("down again"))
    with pytest.raises(ConnectionError):  # a resume reports its failed read to its caller
        await h.cursors.catch_up("c", 0)
