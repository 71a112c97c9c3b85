"""The per-process hub: one bus subscription per process, fanned out to local sessions, and
the drain.

Each event is parsed once per process (to learn its conversation and seq) and its bytes are
written unchanged to every recipient: encode once, write many. The hub knows a session only as
a `Member` (what it routes to); `session.Session` is the one in production.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Any, Protocol

import orjson

from chat.ws import close_codes
from chat.ws.close_codes import CloseCode
from chat.ws.delivery import DeliveryCursors
from chat.ws.deps import GatewayDeps
from chat.ws.outbound import Flusher
from chat.ws.stats import DeliveryStats
from chat.ws.wire import FrameCache

log = logging.getLogger(__name__)

LOOP_LAG_PROBE_S = 0.5
"""How often the event loop's lag is sampled: a timer asked for this delay, run late by the
time the loop spent on other work (a blocking call shows up here first)."""


class Member(Protocol):
    """One authenticated socket, as the hub routes to it."""

    @property
    def cursors(self) -> DeliveryCursors:
        """Where its conversations' live events go (in order, gaps filled from the log)."""
        ...

    @property
    def queued_bytes(self) -> int: ...

    def control(self, frame: dict[str, Any]) -> None:
        """A `_control` frame on its user's channel."""
        ...

    def refresh_presence(self) -> None:
        """Redis may have lost its presence entry: write it again soon."""
        ...

    def send_frame(self, payload: bytes, kind: str) -> bool:
        """An ephemeral frame (typing, presence, read, conversation), written as it comes."""
        ...

    def close_with(self, code: CloseCode) -> None: ...


class Gateway:
    """Per-process state shared by all sockets: channel routing and the bus subscription.

    Built once per process by the wiring, which also registers `drain` as a drain hook."""

    def __init__(self, deps: GatewayDeps) -> None:
        self.deps = deps
        self.routes: dict[str, set[Member]] = {}
        self.sockets: set[Member] = set()
        self._subscription: Any = None
        self._subscribing: dict[str, asyncio.Future[None]] = {}
        """Channels whose SUBSCRIBE is on its way, with the call confirming it."""
        self._starting: asyncio.Lock | None = None
        self._emptied = asyncio.Event()
        self.frames = FrameCache()
        self.stats = DeliveryStats(deps.metrics)
        self.flusher = Flusher()
        self._tasks: set[asyncio.Task[None]] = set()
        self._probe: asyncio.TimerHandle | None = None
        self._lease: asyncio.TimerHandle | None = None
        deps.metrics.outbound_bytes.set_function(
            lambda: float(sum(h.queued_bytes for h in self.sockets))
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
                # Before the first socket counts as present: a gateway that crashed before
                # its first renewal would leave its users online until their own entries
                # expired, not `presence_ttl_s` after.
                await self._renew_lease()

    async def _renew_lease(self) -> None:
        """The process's presence lease (chat/stores/cluster/redis_presence.py), renewed every
        heartbeat; a failure is logged and the next heartbeat tries again."""
        await self._renew()
        if not self.deps.draining():
            self._lease = asyncio.get_running_loop().call_later(
                self.deps.limits.heartbeat_interval_s, self._lease_due
            )

    async def _renew(self) -> None:
        try:
            await self.deps.presence.renew()
        except Exception:
            log.warning("presence lease renewal failed", exc_info=True)

    def _lease_due(self) -> None:
        if not self.deps.draining():  # a renewal after `release` would revive the lease
            self.spawn(self._renew_lease())

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
        members = self.routes.get(channel)
        if not members:
            return
        frame = orjson.loads(payload)
        kind = frame.get("type")
        if kind == "message":
            cid, seq, ts = frame["conversation_id"], frame["seq"], frame["ts"]
            stats = self.stats
            stats.begin_fanout(ts)  # counted once, when every recipient has it (stats.py)
            try:
                for h in tuple(members):
                    h.cursors.live(cid, seq, ts, payload)
            finally:
                stats.end_fanout()
        elif kind == "_control":
            for h in tuple(members):
                h.control(frame)
        else:
            # typing, presence, read, conversation: ephemeral, no seq; written as they come.
            for h in tuple(members):
                h.send_frame(payload, kind)

    def on_reset(self) -> None:
        """The bus may have dropped messages: every socket re-reads its conversations' logs.
        And Redis may have lost its last writes (a restart, a failover): the lease is renewed
        now and every socket's presence entry written again within a heartbeat, rather than
        at its next 5-minute refresh."""
        self.deps.metrics.bus_resets.inc()
        self.deps.membership.clear()  # `left` frames may be among the missed: ask the store
        if self._lease is not None and not self.deps.draining():
            self.spawn(self._renew())
        for h in tuple(self.sockets):
            h.refresh_presence()
            for cid in tuple(h.cursors.cursors):
                h.cursors.fill(cid)

    def on_disconnect(self) -> None:
        """The bus connection is lost: until `on_reset`, removals would go unheard."""
        self.deps.membership.suspend()

    # -- routing --------------------------------------------------------------------------
    async def join(self, member: Member, channels: list[str]) -> None:
        """Route `channels` to `member`; returns once the bus confirmed every one of them is
        subscribed, also when another member's SUBSCRIBE for it is still on its way (a user's
        second socket must not count as watching its user channel before anything published
        there can reach this process: the membership cache relies on it)."""
        new: list[str] = []
        waits: set[asyncio.Future[None]] = set()
        for channel in channels:
            subs = self.routes.setdefault(channel, set())
            if not subs:
                new.append(channel)
            elif (pending := self._subscribing.get(channel)) is not None:
                waits.add(pending)
            subs.add(member)
        if new:
            confirm = asyncio.ensure_future(self._subscription.subscribe(new))
            for channel in new:
                self._subscribing[channel] = confirm
            confirm.add_done_callback(lambda _: self._subscribed(new, confirm))
            waits.add(confirm)
        # Shielded: a member that goes away meanwhile must not cancel the others' SUBSCRIBE.
        for wait in waits:
            await asyncio.shield(wait)

    def _subscribed(self, channels: list[str], confirm: asyncio.Future[None]) -> None:
        if not confirm.cancelled():
            confirm.exception()  # retrieved: each joiner still gets it from its own await
        for channel in channels:
            if self._subscribing.get(channel) is confirm:
                del self._subscribing[channel]

    async def leave(self, member: Member, channels: list[str]) -> None:
        gone = []
        for channel in channels:
            subs = self.routes.get(channel)
            if subs is None:
                continue
            subs.discard(member)
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
        if self._lease is not None:
            self._lease.cancel()
            self._lease = None
            try:
                await self.deps.presence.release()
            except Exception:
                log.warning("presence lease release failed", exc_info=True)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run in the background, keeping a reference so the task is not collected."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def add(self, member: Member) -> None:
        """An authenticated socket: drained on SIGTERM, refilled on a bus reset."""
        self.sockets.add(member)

    def forget(self, member: Member) -> None:
        self.sockets.discard(member)
        if not self.sockets:
            self._emptied.set()
