"""A member's join returns only once its channels are subscribed, also when another member's
SUBSCRIBE for the same channel is still on its way: a user's second socket must not count as
watching its user channel (the membership cache relies on that channel's `left` frames) before
what is published there can reach this process."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

from chat.stores.embedded.bus import MemoryBus, MemorySubscription
from chat.ws.hub import Gateway
from tests.unit.test_ws_membership import World


class HeldSubscription(MemorySubscription):
    """SUBSCRIBE confirms only when the test releases it (the bus's round trip)."""

    release: asyncio.Event

    async def subscribe(self, channels: Sequence[str]) -> None:
        await self.release.wait()
        await super().subscribe(channels)


class HeldBus(MemoryBus):
    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def open(self, listener: object) -> MemorySubscription:  # type: ignore[override]
        sub = HeldSubscription(self, listener)  # type: ignore[arg-type]
        sub.release = self.release
        return sub


class Member:
    """What the hub routes to; nothing is delivered in this test."""


async def _hub() -> tuple[Gateway, HeldBus]:
    bus = HeldBus()
    hub = Gateway(replace(World().hub.deps, bus=bus))
    await hub.start()
    return hub, bus


async def test_a_second_join_waits_for_the_first_joins_subscribe() -> None:
    hub, bus = await _hub()
    first = asyncio.create_task(hub.join(Member(), ["user:alice"]))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    second = asyncio.create_task(hub.join(Member(), ["user:alice"]))  # type: ignore[arg-type]
    for _ in range(5):
        await asyncio.sleep(0)
    assert not first.done()
    assert not second.done(), "the second socket counted as watching before SUBSCRIBE confirmed"
    bus.release.set()
    await asyncio.wait_for(asyncio.gather(first, second), 2)


async def test_a_member_going_away_does_not_cancel_the_others_subscribe() -> None:
    hub, bus = await _hub()
    first = asyncio.create_task(hub.join(Member(), ["user:alice"]))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    second = asyncio.create_task(hub.join(Member(), ["user:alice"]))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    first.cancel()
    bus.release.set()
    await asyncio.wait_for(second, 2)
    assert first.cancelled()
