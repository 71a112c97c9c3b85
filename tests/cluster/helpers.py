"""Small helpers for the cluster tests: a recording bus listener and bounded polling."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class Collector:
    """A bus listener that records what it is given."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.resets = 0

    def on_message(self, channel: str, payload: bytes) -> None:
        self.messages.append((channel, payload))

    def on_reset(self) -> None:
        self.resets += 1


async def eventually(check: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    """Poll `check` until it holds, failing after `timeout_s`: synchronisation without sleeps
    of a guessed length."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for: {what}")
        await asyncio.sleep(0.01)
