"""One client's session on the gateway, as a state machine that never touches a socket.

It reads client frames (`receive`), authenticates, subscribes, dispatches to the chat services
(`commands.COMMANDS`), keeps the presence heartbeat and the maximum age (`liveness.py`), and
decides when and with which code to close (`policy.py`). It writes only through a `Transport`
(in production `outbound.Writer` on Tornado's stream), and its timers come from a `Schedule`,
so unit tests drive it with fakes and an explicit clock (tests/unit/test_ws_session.py).

States, and the only moves between them (anything else is a bug and raises):

    AWAITING_AUTH --auth ok--> AUTHENTICATED
    AWAITING_AUTH, AUTHENTICATED --close_with--> CLOSING --socket gone--> CLOSED
    AWAITING_AUTH, AUTHENTICATED --socket gone--> CLOSED

Guarantees kept here:
- Nothing but an `auth` frame is served before `ready`; every error before `ready` is followed
  by a close (`policy.close_for_auth_error`), so a client never waits on a half-open session.
- No frame is written once the session decided to close: a slow consumer's backlog is not
  topped up, and nothing is counted as delivered that was dropped.
- Cursors are placed before any live event can reach them: resume positions from the auth frame
  first, then subscriptions, then positions read (see `subscribe`), so nothing falls in a gap.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Any

from chat.domain.accounts import Principal
from chat.domain.channels import conversation_channel
from chat.domain.errors import ChatError, Unauthenticated
from chat.domain.frames import event_frame
from chat.domain.ids import new_id
from chat.domain.models import Event
from chat.logs import bind
from chat.ws import close_codes, liveness
from chat.ws.auth import authenticate
from chat.ws.close_codes import CloseCode
from chat.ws.commands import COMMANDS, CONTROLS
from chat.ws.delivery import REPLAY_CHUNK_BYTES, REPLAY_CHUNK_EVENTS, DeliveryCursors
from chat.ws.policy import close_for_auth_error
from chat.ws.protocol import error_frame, not_recoverable_frame, parse
from chat.ws.transport import Schedule, Timer, Transport, call_later

if TYPE_CHECKING:
    from chat.ws.hub import Gateway

# A connection's lines keep the logger name they had before the session was split out of the
# handler: operators (and tests/observability/test_logs.py) select them by it.
log = logging.getLogger("chat.ws.gateway")


class SessionState(Enum):
    AWAITING_AUTH = "awaiting_auth"
    AUTHENTICATED = "authenticated"
    CLOSING = "closing"
    """The server closed (a close frame is on its way): frames in are ignored, none go out."""
    CLOSED = "closed"
    """The socket is gone."""


_MOVES: dict[SessionState, frozenset[SessionState]] = {
    SessionState.AWAITING_AUTH: frozenset(
        {SessionState.AUTHENTICATED, SessionState.CLOSING, SessionState.CLOSED}
    ),
    SessionState.AUTHENTICATED: frozenset({SessionState.CLOSING, SessionState.CLOSED}),
    SessionState.CLOSING: frozenset({SessionState.CLOSED}),
    SessionState.CLOSED: frozenset(),
}


_CLOSING = (SessionState.CLOSING, SessionState.CLOSED)
"""A tuple, not a set: `in` compares enum members by identity, without hashing them."""


class Session:
    # One per socket: slots keep an idle session small (memory per socket, docs/performance.md).
    __slots__ = (
        "_registered",
        "_schedule",
        "_timers",
        "_watching",
        "beat",
        "channels",
        "connection_id",
        "cursors",
        "deps",
        "hub",
        "principal",
        "state",
        "transport",
    )

    def __init__(
        self,
        hub: Gateway,
        transport: Transport,
        *,
        connection_id: str | None = None,
        schedule: Schedule = call_later,
    ) -> None:
        self.hub = hub
        self.deps = hub.deps
        self.transport = transport
        self.connection_id = connection_id or new_id("ws")
        self.state = SessionState.AWAITING_AUTH
        self.principal: Principal | None = None
        self.channels: list[str] = []
        limits = self.deps.limits
        self.cursors = DeliveryCursors(
            self._deliver_live,
            event_frame,
            self._fetch,
            self._lost,
            drain=transport.writable,
            # A chunk always fits in the socket's budget, whatever the limits are set to.
            chunk_events=max(1, min(REPLAY_CHUNK_EVENTS, limits.outbound_queue_frames // 4)),
            chunk_bytes=max(1, min(REPLAY_CHUNK_BYTES, limits.outbound_queue_bytes // 4)),
            gap=self.deps.metrics.gap_fills.inc,
            write_replayed=self._deliver_replayed,
        )
        self._schedule = schedule
        self._timers: dict[str, Timer] = {}
        self.beat: asyncio.Task[None] | None = None  # a presence heartbeat under way
        self._registered = False  # counted as a connection, in the hub's sockets
        self._watching = False  # counted in the membership cache's watchers

    # -- state ----------------------------------------------------------------------------
    def move(self, to: SessionState) -> None:
        if to not in _MOVES[self.state]:
            raise RuntimeError(f"session cannot go from {self.state.value} to {to.value}")
        self.state = to

    @property
    def closing(self) -> bool:
        return self.state in _CLOSING

    @property
    def is_authenticated(self) -> bool:
        """Authenticated and not closing: the only state in which frames are served."""
        return self.state is SessionState.AUTHENTICATED

    @property
    def who(self) -> Principal:
        if self.principal is None:
            raise Unauthenticated("not authenticated", code="unauthenticated")
        return self.principal

    @property
    def queued_bytes(self) -> int:
        return self.transport.queued_bytes

    def timer(self, name: str, delay: float, callback: Callable[[], None]) -> None:
        """(Re)arm the named timer; all are cancelled when the socket goes."""
        self._cancel(name)
        self._timers[name] = self._schedule(delay, callback)

    def _cancel(self, name: str) -> None:
        old = self._timers.pop(name, None)
        if old is not None:
            old.cancel()

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        """The socket is open: the auth frame is due within `auth_timeout_s`."""
        await self.hub.start()
        self.timer("auth", self.deps.limits.auth_timeout_s, self._auth_deadline)

    def _auth_deadline(self) -> None:
        if self.state is SessionState.AWAITING_AUTH:
            self.close_with(close_codes.AUTH_TIMEOUT)

    def authenticated(self, principal: Principal) -> None:
        """Auth succeeded: from here the session is a connection of `principal`'s."""
        self.move(SessionState.AUTHENTICATED)
        self.principal = principal
        bind(user_id=principal.user.id)
        log.debug("authenticated")
        self._cancel("auth")
        self.hub.add(self)
        self._registered = True
        self.deps.metrics.connections.inc()
        self.deps.metrics.connects.inc()

    def watch_membership(self) -> None:
        """The user's channel is subscribed: this process now hears the user's `left` and
        `close` frames, so the membership cache may keep answers for this user until the
        socket goes (chat/domain/membership.py). Not once closing: `closed` would not undo it."""
        if not self.closing and not self._watching:
            self._watching = True
            self.deps.membership.watch(self.who.user.id)

    def close_with(self, code: CloseCode) -> None:
        """Close the socket with `code` (once: later reasons to close change nothing)."""
        if self.closing:
            return
        self.move(SessionState.CLOSING)
        self.deps.metrics.closes.labels(str(code.code)).inc()
        self.transport.close(code)

    def closed(self) -> None:
        """The socket is gone (either side closed it, or the connection broke)."""
        if self.state is SessionState.CLOSED:
            return
        self.move(SessionState.CLOSED)
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        if self.beat is not None:
            self.beat.cancel()  # a beat after the disconnect would keep a stale presence key
        self.cursors.cancel()
        if self._watching:  # before the user's channel may be unsubscribed (`_cleanup`)
            self._watching = False
            self.deps.membership.unwatch(self.who.user.id)
        if self._registered:
            self.hub.forget(self)
            self.deps.metrics.connections.dec()
            self.deps.metrics.disconnects.inc()
            self.hub.spawn(self._cleanup())

    async def _cleanup(self) -> None:
        await self.hub.leave(self, self.channels)
        try:
            await self.deps.presence.disconnect(self.who, self.connection_id)
        except Exception:
            log.warning("presence disconnect failed", exc_info=True)

    # -- frames in ------------------------------------------------------------------------
    async def receive(self, message: str | bytes) -> None:
        if self.closing:
            return
        if isinstance(message, bytes):
            # The protocol is JSON text frames; a binary frame is a client bug, before or after
            # auth, and is not read.
            self.close_with(close_codes.BINARY)
            return
        ref: object = None
        metrics = self.deps.metrics
        try:
            frame = parse(message)
            ref = frame.get("ref")
            kind = frame["type"]
            # Frames run one after another in the connection's task (rfc6455.py): every frame
            # binds both fields, and its conversation is unbound once it is handled.
            cid = frame.get("conversation_id")
            bind(
                user_id=self.principal.user.id if self.principal else None,
                conversation_id=cid if isinstance(cid, str) else None,
            )
            self.hub.stats.frame_in(kind)
            if self.state is SessionState.AWAITING_AUTH:
                await authenticate(self, frame)
            elif self.state is SessionState.AUTHENTICATED:
                await COMMANDS[kind](self, frame)
        except ChatError as exc:
            metrics.errors.labels("ws", exc.code).inc()
            log.debug("frame refused: %s", exc.code)
            ref = exc.details.pop("ref", ref)
            awaiting = self.state is SessionState.AWAITING_AUTH
            if awaiting:
                metrics.auth_failures.labels("ws", exc.code).inc()
            self.send_frame(error_frame(exc.code, exc.message, ref, **exc.details), "error")
            if awaiting:
                self.close_with(close_for_auth_error(exc))
        except Exception:
            log.exception("frame handling failed")
            metrics.errors.labels("ws", "internal").inc()
            self.send_frame(error_frame("internal", "internal error", ref), "error")
            if self.state is SessionState.AWAITING_AUTH:
                self.close_with(close_codes.INTERNAL)

    # -- subscriptions --------------------------------------------------------------------
    async def subscribe(
        self, cids: list[str], keep: dict[str, int] | None = None
    ) -> dict[str, int]:
        """Subscribe first, then read positions: an event landing in between is either at or
        below the position (the client fetches it) or above it (delivered live). Cursors in
        `keep` (resumed conversations) are already placed and stay where they are."""
        keep = keep or {}
        channels = [conversation_channel(c) for c in cids]
        self.channels += channels
        await self.hub.join(self, channels)
        positions = {}
        for cid in cids:
            if cid in keep:
                positions[cid] = keep[cid]
                continue
            positions[cid] = await self.deps.messaging.last_seq(cid)
            self.cursors.track(cid, positions[cid])
        return positions

    async def unsubscribe(self, cid: str) -> None:
        channel = conversation_channel(cid)
        if channel in self.channels:
            self.channels.remove(channel)
        self.cursors.forget(cid)
        await self.hub.leave(self, [channel])

    def refresh_presence(self) -> None:
        liveness.refresh_soon(self)

    def control(self, frame: dict[str, Any]) -> None:
        """A control frame on the user's channel (`_control`, from the chat services)."""
        action = CONTROLS.get(frame.get("action"))  # type: ignore[arg-type]
        if action is not None:
            action(self, frame)

    # -- frames out -----------------------------------------------------------------------
    def send_frame(self, payload: bytes, kind: str) -> bool:
        """Queue a frame; False when it was dropped. A socket over its outbound budget is a
        slow consumer and is closed (4008: it reconnects and resumes), so memory per socket
        stays bounded."""
        if self.closing or not self.transport.open:
            return False
        return self._queued(self.transport.write(payload, kind))

    def _queued(self, ok: bool) -> bool:
        if not ok:
            self.close_with(close_codes.SLOW_CONSUMER)
        return ok

    def _deliver_live(self, payload: bytes, ts: int) -> None:
        """A message event live from the bus: once per recipient of every event, so the checks
        of `closing` and `_queued` are inlined."""
        transport = self.transport
        if (
            self.state not in _CLOSING
            and transport.open
            and not transport.deliver(payload, ts, False)
        ):
            self.close_with(close_codes.SLOW_CONSUMER)

    def _deliver_replayed(self, payload: bytes, ts: int) -> None:
        """A message event read back from the log (resume, gap fill)."""
        if not self.closing and self.transport.open:
            self._queued(self.transport.deliver(payload, ts, True))

    async def _fetch(self, cid: str, after: int) -> tuple[tuple[Event, ...], bool]:
        replay = await self.deps.messaging.replay(cid, after)
        return replay.events, replay.recoverable

    async def _lost(self, cid: str) -> int:
        self.deps.metrics.not_recoverable.inc()
        self.send_frame(not_recoverable_frame(cid), "error")
        return await self.deps.messaging.last_seq(cid)
