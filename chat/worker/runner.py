"""Dramatiq actors are synchronous and run on worker threads; the stores are asyncio. A runner
executes an actor's coroutine on the event loop that owns the stores."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class LoopRunner:
    def __init__(self, loop: asyncio.AbstractEventLoop, timeout_s: float = 120.0) -> None:
        self.loop = loop
        self._timeout_s = timeout_s

    def run(self, make: Callable[[], Awaitable[T]]) -> T:
        async def call() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(self._timeout_s)


class BackgroundLoop:
    """An event loop on its own thread, for a worker process whose main thread Dramatiq owns."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="stores", daemon=True)

    def start(self) -> LoopRunner:
        self._thread.start()
        return LoopRunner(self.loop)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
