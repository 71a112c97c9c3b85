"""The per-process hub: one bus subscription per process, fanned out to local sockets.

Each event is parsed once per process (to learn its conversation and seq) and its bytes are
written unchanged to every recipient: encode once, write many.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

import orjson

from chat.ws import close_codes
from chat.ws.deps import GatewayDeps
from chat.ws.outbound import DeliveryStats
from chat.ws.wire import FrameCache

if TYPE_CHECKING:
    from chat.ws.gateway import GatewayHandler

log = logging.getLogger(__name__)

LOOP_LAG_PROBE_S = 0.5
"""How often the event loop's lag is sampled: a timer asked for this delay, run late by the
time the loop spent on other work (a blocking call shows up here first)."""


class Gateway:
    """Per-process state shared by all sockets: channel routing and the bus subscription.

    Built once per process by the wiring, which also registers `drain` as a drain hook."""

    def __init__(self, deps: GatewayDeps) -> None:
        self.deps = deps
        self.routes: dict[str, set[GatewayHandler]] = {}
        self.sockets: set[GatewayHandler] = set()
        self._subscription: Any = None
        self._starting: asyncio.Lock | None = None
        self._emptied = asyncio.Event()
        self.frames = FrameCache()
        self.stats = DeliveryStats(deps.metrics)
        self._tasks: set[asyncio.Task[None]] = set()
        self._probe: asyncio.TimerHandle | None = None
        deps.metrics.outbound_bytes.set_function(
            lambda: float(sum(h.writer.queued_bytes for h in self.sockets))
        )

    async def start(self) -> None:
        if self._subscription is not None:
            return
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._subscription is None:
                self._subscription = await self.deps.bus.open(self)
                self._probe_loop(time.monotonic() + LOOP_LAG_PROBE_S)

    def _probe_loop(self, due: float) -> None:
        """A plain timer, not a task: nothing to cancel when the loop closes."""
        now = time.monotonic()
        if self._probe is not None:
            self.deps.metrics.loop_lag.observe(max(0.0, now - due))
        if self.deps.draining():
            return
        self._probe = asyncio.get_running_loop().call_later(
            LOOP_LAG_PROBE_S, self._probe_loop, now + LOOP_LAG_PROBE_S
        )

    # -- Listener (called by the bus on this loop) -----------------------------------------
    def on_message(self, channel: str, payload: bytes) -> None:
        handlers = self.routes.get(channel)
        if not handlers:
            return
        frame = orjson.loads(payload)
        kind = frame.get("type")
        if kind == "message":
            cid, seq, ts = frame["conversation_id"], frame["seq"], frame["ts"]
            for h in tuple(handlers):
                h.cursors.live(cid, seq, ts, payload)
        elif kind == "_control":
            for h in tuple(handlers):
                h.control(frame)
        else:
            # typing, presence, read, conversation: ephemeral, no seq; written as they come.
            for h in tuple(handlers):
                h.send_frame(payload, kind)

    def on_reset(self) -> None:
        """The bus may have dropped messages: every socket re-reads its conversations' logs."""
        self.deps.metrics.bus_resets.inc()
        for h in tuple(self.sockets):
            for cid in tuple(h.cursors.cursors):
                h.cursors.fill(cid)

    # -- routing --------------------------------------------------------------------------
    async def join(self, handler: GatewayHandler, channels: list[str]) -> None:
        new = []
        for channel in channels:
            subs = self.routes.setdefault(channel, set())
            if not subs:
                new.append(channel)
            subs.add(handler)
        if new:
            await self._subscription.subscribe(new)

    async def leave(self, handler: GatewayHandler, channels: list[str]) -> None:
        gone = []
        for channel in channels:
            subs = self.routes.get(channel)
            if subs is None:
                continue
            subs.discard(handler)
            if not subs:
                del self.routes[channel]
                gone.append(channel)
        if gone and self._subscription is not None:
            await self._subscription.unsubscribe(gone)

    async def drain(self) -> None:
        """SIGTERM: ask every client to reconnect elsewhere (1012), then wait for them."""
        for h in tuple(self.sockets):
            h.close_with(close_codes.RESTARTING)
        self._emptied.clear()
        if self.sockets:
            try:
                await asyncio.wait_for(self._emptied.wait(), self.deps.drain_timeout_s)
            except TimeoutError:
                log.warning("%d sockets still open after the drain timeout", len(self.sockets))

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run in the background, keeping a reference so the task is not collected."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def forget(self, handler: GatewayHandler) -> None:
        self.sockets.discard(handler)
        if not self.sockets:
            self._emptied.set()
