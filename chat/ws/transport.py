"""The two things a session needs from its surroundings: a socket to write to and close, and
timers. In production these are `outbound.Writer` on Tornado's stream and the event loop's
`call_later`; unit tests hand in fakes and fire the timers themselves."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from chat.ws.close_codes import CloseCode


class Transport(Protocol):
    """The socket, as a session sees it."""

    @property
    def open(self) -> bool:
        """False once a close frame was sent (by anyone) or the connection is gone."""
        ...

    @property
    def queued_bytes(self) -> int: ...

    def write(self, payload: bytes, kind: str) -> bool:
        """Queue a frame; False when the socket is over its outbound budget."""
        ...

    def deliver(self, payload: bytes, ts: int, replayed: bool) -> bool:
        """`write` for a message event (counted as a delivery once queued)."""
        ...

    def close(self, code: CloseCode) -> None: ...

    async def writable(self) -> None:
        """Returns once the backlog is low enough for a replay to write its next chunk."""
        ...


class Timer(Protocol):
    def cancel(self) -> None: ...


Schedule = Callable[[float, Callable[[], None]], Timer]
"""(delay in seconds, callback) -> a timer that can be cancelled: `loop.call_later`'s shape."""


def call_later(delay: float, callback: Callable[[], None]) -> Timer:
    return asyncio.get_running_loop().call_later(delay, callback)
