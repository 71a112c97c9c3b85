"""In-process bus: publish calls each subscribed listener directly, on the caller's loop."""

from __future__ import annotations

from collections.abc import Sequence

from chat.domain.ports import Listener


class MemorySubscription:
    def __init__(self, bus: MemoryBus, listener: Listener) -> None:
        self._bus = bus
        self.listener = listener
        self.channels: set[str] = set()

    async def subscribe(self, channels: Sequence[str]) -> None:
        for channel in channels:
            self.channels.add(channel)
            self._bus.routes.setdefault(channel, set()).add(self)

    async def unsubscribe(self, channels: Sequence[str]) -> None:
        for channel in channels:
            self.channels.discard(channel)
            subs = self._bus.routes.get(channel)
            if subs is not None:
                subs.discard(self)
                if not subs:
                    del self._bus.routes[channel]

    async def close(self) -> None:
        await self.unsubscribe(list(self.channels))


class MemoryBus:
    def __init__(self) -> None:
        self.routes: dict[str, set[MemorySubscription]] = {}

    async def publish(self, channel: str, payload: bytes) -> None:
        for sub in tuple(self.routes.get(channel, ())):
            sub.listener.on_message(channel, payload)

    async def open(self, listener: Listener) -> MemorySubscription:
        return MemorySubscription(self, listener)
