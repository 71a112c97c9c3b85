"""The domain's JobQueue on Dramatiq, with at most one pending persistence job per
conversation: a pending flag is claimed before enqueueing and released when the job starts, so a
send after that start enqueues a fresh job and nothing is left behind."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol


class PendingFlags(Protocol):
    async def claim(self, conversation_id: str) -> bool:
        """True when no job was pending (the caller must enqueue one)."""
        ...

    async def release(self, conversation_id: str) -> None: ...


class MemoryPendingFlags:
    def __init__(self) -> None:
        self._pending: set[str] = set()

    async def claim(self, conversation_id: str) -> bool:
        if conversation_id in self._pending:
            return False
        self._pending.add(conversation_id)
        return True

    async def release(self, conversation_id: str) -> None:
        self._pending.discard(conversation_id)


class DramatiqQueue:
    """Bound to the actor after the actors are registered (they need the domain, which needs
    this queue)."""

    def __init__(self, flags: PendingFlags, *, blocking_send: bool) -> None:
        self.flags = flags
        self._send: Callable[[str], object] | None = None
        self._blocking_send = blocking_send
        self.enqueued = 0

    def bind(self, send: Callable[[str], object]) -> None:
        self._send = send

    async def persist_soon(self, conversation_id: str) -> None:
        if self._send is None:
            raise RuntimeError("DramatiqQueue used before bind()")
        if not await self.flags.claim(conversation_id):
            return
        try:
            if self._blocking_send:
                # RedisBroker.enqueue is a blocking network call: keep it off the loop.
                await asyncio.to_thread(self._send, conversation_id)
            else:
                self._send(conversation_id)
        except BaseException:
            await self.flags.release(conversation_id)
            raise
        self.enqueued += 1
