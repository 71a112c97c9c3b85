"""One WebSocket connection: handshake, auth, frame dispatch, delivery to the client.

The process-wide routing and bus subscription live in `hub.py` (`Gateway`, re-exported here);
the socket-facing writer in `outbound.py`; the per-conversation cursors in `delivery.py`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Any

import tornado.ioloop
import tornado.websocket

from chat.domain import validation
from chat.domain.accounts import Principal
from chat.domain.channels import conversation_channel, user_channel
from chat.domain.errors import ChatError, Forbidden, InvalidRequest
from chat.domain.frames import encode, event_frame
from chat.domain.ids import new_id
from chat.domain.models import Event
from chat.logs import bind, request_id_from
from chat.ws import close_codes
from chat.ws.close_codes import CloseCode
from chat.ws.delivery import REPLAY_CHUNK_BYTES, REPLAY_CHUNK_EVENTS, DeliveryCursors
from chat.ws.deps import GatewayDeps
from chat.ws.hub import Gateway
from chat.ws.outbound import Writer
from chat.ws.protocol import ack_frame, error_frame, parse
from chat.ws.rfc6455 import StrictProtocol

# Gateway and GatewayDeps: imported from here by the app's wiring.
__all__ = ["Gateway", "GatewayDeps", "GatewayHandler"]

log = logging.getLogger(__name__)


def _positions(raw: object) -> dict[str, int]:
    """`{conversation_id: last seq seen}`, as `resume` takes it."""
    if not isinstance(raw, dict) or len(raw) > 10_000:
        raise InvalidRequest("resume must map conversation ids to seqs")
    return {cid: validation.seq(seq, "each resume seq") for cid, seq in raw.items()}


class State(Enum):
    AUTHENTICATING = "authenticating"
    READY = "ready"
    CLOSED = "closed"


class GatewayHandler(tornado.websocket.WebSocketHandler):
    gateway: Gateway

    def initialize(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.deps = gateway.deps
        self.limits = gateway.deps.limits
        self.state = State.AUTHENTICATING
        self.principal: Principal | None = None
        self.connection_id = new_id("ws")
        self.writer = Writer(
            self.limits.outbound_queue_frames,
            self.limits.outbound_queue_bytes,
            gateway.frames,
            gateway.stats,
            self,
        )
        self.closing = False  # set once the server decided to close: later frames are ignored
        self.channels: list[str] = []
        self.cursors = DeliveryCursors(
            self._write_event,
            event_frame,
            self._fetch,
            self._lost,
            drain=self.writer.writable,
            # A chunk always fits in the socket's budget, whatever the limits are set to.
            chunk_events=max(1, min(REPLAY_CHUNK_EVENTS, self.limits.outbound_queue_frames // 4)),
            chunk_bytes=max(1, min(REPLAY_CHUNK_BYTES, self.limits.outbound_queue_bytes // 4)),
            gap=gateway.deps.metrics.gap_fills.inc,
            write_replayed=self._write_replayed,
        )
        self._timers: list[object] = []
        self._heartbeat: asyncio.Task[None] | None = None
        self._m = gateway.deps.metrics
        # This connection's task runs every frame: its log lines carry these from here on.
        request_id = request_id_from(self.request.headers.get("X-Request-ID"))
        bind(request_id=request_id, connection_id=self.connection_id, user_id=None)

    # -- handshake --------------------------------------------------------------------------
    async def get(self, *args: str, **kwargs: str) -> None:
        """With `CHAT_ALLOWED_ORIGINS` set, the allow-list is the whole rule for any request that
        carries an Origin: Tornado would admit, without asking `check_origin`, an Origin equal
        to the Host header or a `Sec-Fetch-Site: same-origin` request, and both are what a DNS
        rebinding attack (a page on a name the attacker points at us) looks like."""
        origin = self.request.headers.get("Origin")
        deps = self.deps
        if deps.origins_exclusive and origin is not None and origin not in deps.origins:
            self.set_status(403)
            self.finish("Cross origin websockets not allowed")
            return
        await super().get(*args, **kwargs)

    def check_origin(self, origin: str) -> bool:
        return origin in self.deps.origins

    def get_websocket_protocol(self) -> tornado.websocket.WebSocketProtocol | None:
        """Tornado's protocol, but RFC 6455 violations get 1002/1007 before the TCP close."""
        proto = super().get_websocket_protocol()
        if isinstance(proto, tornado.websocket.WebSocketProtocol13):
            return StrictProtocol(self, False, proto.params)
        return proto

    async def open(self, *args: str, **kwargs: str) -> None:
        # Writes are already coalesced per loop iteration (send_frame): Nagle would only add
        # its delayed-ACK stall (~40 ms) to small frames such as acks.
        self.set_nodelay(True)
        assert self.ws_connection is not None
        self.writer.attach(self.ws_connection.stream)
        await self.gateway.start()
        loop = tornado.ioloop.IOLoop.current()
        self._timers.append(loop.call_later(self.limits.auth_timeout_s, self._auth_deadline))

    def _auth_deadline(self) -> None:
        if self.state is State.AUTHENTICATING:
            self.close_with(close_codes.AUTH_TIMEOUT)

    # -- frames in ------------------------------------------------------------------------
    async def on_message(self, message: str | bytes) -> None:
        ref: object = None
        if self.closing:
            return
        if isinstance(message, bytes):
            # The protocol is JSON text frames; a binary frame is a client bug, before or after
            # auth, and is not read.
            self.close_with(close_codes.BINARY)
            return
        try:
            frame = parse(message)
            ref = frame.get("ref")
            kind = frame["type"]
            # Tornado runs each frame in a task of its own (a copy of the connection's
            # context): what is bound here is this frame's.
            cid = frame.get("conversation_id")
            bind(
                user_id=self.principal.user.id if self.principal else None,
                conversation_id=cid if isinstance(cid, str) else None,
            )
            self._m.frames_in.labels(kind).inc()
            if self.state is State.AUTHENTICATING:
                await self._authenticate(frame)
                return
            if self.state is not State.READY:
                return
            handler = self._dispatch[kind]
            await handler(self, frame)
        except ChatError as exc:
            self._m.errors.labels("ws", exc.code).inc()
            log.debug("frame refused: %s", exc.code)
            ref = exc.details.pop("ref", ref)
            if self.state is State.AUTHENTICATING:
                self._m.auth_failures.labels("ws", exc.code).inc()
                self.send_frame(error_frame(exc.code, exc.message, ref, **exc.details), "error")
                if exc.code == "too_many_connections":
                    self.close_with(close_codes.TOO_MANY_CONNECTIONS)
                elif exc.code == "user_disabled":
                    self.close_with(close_codes.DISABLED)
                elif exc.code in ("bad_json", "unknown_type", "invalid_request"):
                    self.close_with(close_codes.PROTOCOL)
                elif exc.status >= 500:
                    # A dependency is down, not the client's fault: come back later.
                    self.close_with(close_codes.TRY_LATER)
                else:
                    self.close_with(close_codes.UNAUTHENTICATED)
            else:
                self.send_frame(error_frame(exc.code, exc.message, ref, **exc.details), "error")
        except tornado.websocket.WebSocketClosedError:
            pass
        except Exception:
            log.exception("frame handling failed")
            self._m.errors.labels("ws", "internal").inc()
            self.send_frame(error_frame("internal", "internal error", ref), "error")
            if self.state is State.AUTHENTICATING:
                self.close_with(close_codes.INTERNAL)

    async def _authenticate(self, frame: dict[str, Any]) -> None:
        if frame["type"] != "auth":
            raise InvalidRequest("the first frame must be 'auth'", code="invalid_request")
        resume = _positions(frame.get("resume", {}))
        principal = await self.deps.accounts.authenticate(frame.get("token"))
        await self.deps.presence.connect(principal, self.connection_id)
        if self.ws_connection is None:  # closed while we waited
            await self.deps.presence.disconnect(principal, self.connection_id)
            return
        self.principal = principal
        bind(user_id=principal.user.id)
        log.debug("authenticated")
        self.state = State.READY
        self.gateway.sockets.add(self)
        self._m.connections.inc()
        self._m.connects.inc()
        cids = await self.deps.conversations.conversation_ids_for_user(principal.user.id)
        self.channels = [user_channel(principal.user.id)]
        await self.gateway.join(self, self.channels)
        # Reconnecting clients give their positions in the auth frame, so their cursors start
        # there before any live event can be written: the gap is replayed first, in order.
        resumed = {cid: seq for cid, seq in resume.items() if cid in cids}
        for cid, seq in resumed.items():
            self.cursors.track(cid, seq)
        positions = await self._subscribe(cids, keep=resumed)
        for cid in resumed:
            self.cursors.fill(cid)
        self._heartbeat = asyncio.create_task(self._beat())
        self._schedule_max_age()
        self.send_frame(
            encode(
                {
                    "type": "ready",
                    "ref": frame.get("ref"),
                    "user_id": principal.user.id,
                    "session_id": principal.session_id,
                    "connection_id": self.connection_id,
                    "conversations": positions,
                    "limits": {
                        "max_frame_bytes": self.limits.max_frame_bytes,
                        "max_body_chars": self.limits.max_body_chars,
                        "send_rate_per_s": self.limits.send_rate_per_s,
                        "send_burst": self.limits.send_burst,
                        "heartbeat_interval_s": self.limits.heartbeat_interval_s,
                    },
                }
            ),
            "ready",
        )
        # After `ready`, so the rule "an error before ready is followed by a close" holds: a
        # client removed from a conversation while it was away resumes it in good faith, and
        # must learn that without losing the others.
        for cid in sorted(resume.keys() - resumed.keys()):
            self.send_frame(
                error_frame(
                    "not_member",
                    "you are not a member of this conversation",
                    frame.get("ref"),
                    conversation_id=cid,
                ),
                "error",
            )

    async def _subscribe(
        self, cids: list[str], keep: dict[str, int] | None = None
    ) -> dict[str, int]:
        """Subscribe first, then read positions: an event landing in between is either at or
        below the position (the client fetches it) or above it (delivered live). Cursors in
        `keep` (resumed conversations) are already placed and stay where they are."""
        keep = keep or {}
        channels = [conversation_channel(c) for c in cids]
        self.channels += channels
        await self.gateway.join(self, channels)
        positions = {}
        for cid in cids:
            if cid in keep:
                positions[cid] = keep[cid]
                continue
            positions[cid] = await self.deps.messaging.last_seq(cid)
            self.cursors.track(cid, positions[cid])
        return positions

    async def _unsubscribe(self, cid: str) -> None:
        channel = conversation_channel(cid)
        if channel in self.channels:
            self.channels.remove(channel)
        self.cursors.forget(cid)
        await self.gateway.leave(self, [channel])

    async def _send(self, frame: dict[str, Any]) -> None:
        assert self.principal is not None
        started = time.perf_counter()
        result = await self.deps.messaging.send(
            self.principal, frame.get("conversation_id"), frame.get("client_id"), frame.get("body")
        )
        self._ack_append(frame, result.event, result.duplicate)
        self._m.ack_latency.observe(time.perf_counter() - started)

    async def _edit(self, frame: dict[str, Any]) -> None:
        assert self.principal is not None
        result = await self.deps.messaging.edit(
            self.principal,
            frame.get("conversation_id"),
            frame.get("seq"),
            frame.get("client_id"),
            frame.get("body"),
        )
        self._ack_append(frame, result.event, result.duplicate)

    async def _delete(self, frame: dict[str, Any]) -> None:
        assert self.principal is not None
        result = await self.deps.messaging.delete(
            self.principal,
            frame.get("conversation_id"),
            frame.get("seq"),
            frame.get("client_id"),
        )
        self._ack_append(frame, result.event, result.duplicate)

    def _ack_append(self, frame: dict[str, Any], event: Event, duplicate: bool) -> None:
        self.send_frame(
            ack_frame(
                frame.get("ref"),
                conversation_id=event.conversation_id,
                client_id=event.client_id,
                seq=event.seq,
                ts=event.ts,
                duplicate=duplicate,
            ),
            "ack",
        )

    async def _resume(self, frame: dict[str, Any]) -> None:
        assert self.principal is not None
        wanted = _positions(frame.get("conversations"))
        for cid in wanted:
            if cid not in self.cursors.cursors:
                raise Forbidden(
                    "you are not a member of this conversation",
                    code="not_member",
                    conversation_id=cid,
                )
        lost = []
        for cid, seq in wanted.items():
            if not await self.cursors.catch_up(cid, seq):
                lost.append(cid)
        self.send_frame(
            encode(
                {
                    "type": "resumed",
                    "ref": frame.get("ref"),
                    "conversations": {
                        c: self.cursors.cursors[c].seq for c in wanted if c in self.cursors.cursors
                    },
                    "not_recoverable": lost,
                }
            ),
            "resumed",
        )

    async def _typing(self, frame: dict[str, Any]) -> None:
        assert self.principal is not None
        await self.deps.messaging.typing(self.principal, frame.get("conversation_id"))

    async def _presence(self, frame: dict[str, Any]) -> None:
        assert self.principal is not None
        await self.deps.presence.set_state(self.principal, self.connection_id, frame.get("state"))

    async def _read(self, frame: dict[str, Any]) -> None:
        assert self.principal is not None
        pointer = await self.deps.messaging.read_up_to(
            self.principal, frame.get("conversation_id"), frame.get("seq")
        )
        self.send_frame(
            ack_frame(
                frame.get("ref"), conversation_id=frame.get("conversation_id"), read_seq=pointer
            ),
            "ack",
        )

    async def _ping(self, frame: dict[str, Any]) -> None:
        self.send_frame(encode({"type": "pong", "ref": frame.get("ref")}), "pong")

    _dispatch: dict[str, Callable[[GatewayHandler, dict[str, Any]], Awaitable[None]]] = {
        "send": _send,
        "edit": _edit,
        "delete": _delete,
        "resume": _resume,
        "typing": _typing,
        "presence": _presence,
        "read": _read,
        "ping": _ping,
        "auth": lambda self, frame: self._already_authenticated(),
    }

    async def _already_authenticated(self) -> None:
        raise InvalidRequest("already authenticated", code="invalid_request")

    # -- control frames from the bus (user channel) ---------------------------------------
    def control(self, frame: dict[str, Any]) -> None:
        action = frame.get("action")
        if action == "close":
            sid = frame.get("session_id")
            if sid is None or (self.principal and sid == self.principal.session_id):
                code = close_codes.BY_CODE.get(
                    int(frame.get("code", 4409)), close_codes.SESSION_REVOKED
                )
                self.close_with(code)
        elif action == "joined":
            conversation = frame["conversation"]
            self.gateway.spawn(self._joined(conversation))
        elif action == "left":
            cid = frame["conversation_id"]
            self.gateway.spawn(self._left(cid))

    async def _joined(self, conversation: dict[str, Any]) -> None:
        cid = conversation["id"]
        if cid in self.cursors.cursors:
            return
        positions = await self._subscribe([cid])
        self.send_frame(
            encode(
                {"type": "conversation", "conversation": conversation, "last_seq": positions[cid]}
            ),
            "conversation",
        )

    async def _left(self, cid: str) -> None:
        await self._unsubscribe(cid)
        self.send_frame(
            encode({"type": "conversation_left", "conversation_id": cid}), "conversation_left"
        )

    @property
    def queued_bytes(self) -> int:
        return self.writer.queued_bytes

    # -- frames out -------------------------------------------------------------------------
    def send_frame(self, payload: bytes, kind: str) -> bool:
        """Queue a frame; frames queued while a write is under way go out in the next one.

        A socket over its outbound budget (frames or bytes not yet sent, see `outbound.py`) is a
        slow consumer and is closed (it reconnects and resumes), so memory per socket stays
        bounded. Returns whether the frame was queued (False: dropped, the socket is closing).
        """
        if self._dropping():
            return False
        return self._accepted(self.writer.write(payload, kind))

    def _dropping(self) -> bool:
        return self.ws_connection is None or self.state is State.CLOSED or self.closing

    def _accepted(self, queued: bool) -> bool:
        if not queued:
            self.close_with(close_codes.SLOW_CONSUMER)
        return queued

    def _write_event(self, payload: bytes, ts: int) -> None:
        """A live event. Only what reached the socket's queue is a delivery: a dropped frame
        is not."""
        if not self._dropping():
            self._accepted(self.writer.deliver(payload, ts, replayed=False))

    def _write_replayed(self, payload: bytes, ts: int) -> None:
        """An event read back from the log (resume, gap fill)."""
        if not self._dropping():
            self._accepted(self.writer.deliver(payload, ts, replayed=True))

    async def _fetch(self, cid: str, after: int) -> tuple[tuple[Event, ...], bool]:
        replay = await self.deps.messaging.replay(cid, after)
        return replay.events, replay.recoverable

    async def _lost(self, cid: str) -> int:
        self._m.not_recoverable.inc()
        self.send_frame(
            encode(
                {
                    "type": "error",
                    "code": "not_recoverable",
                    "conversation_id": cid,
                    "message": "missed events cannot be replayed; reload this conversation",
                }
            ),
            "error",
        )
        return await self.deps.messaging.last_seq(cid)

    async def _beat(self) -> None:
        assert self.principal is not None
        while self.state is State.READY:
            await asyncio.sleep(self.limits.heartbeat_interval_s)
            try:
                await self.deps.presence.heartbeat(self.principal, self.connection_id)
            except Exception:
                log.warning("presence heartbeat failed", exc_info=True)

    def _schedule_max_age(self) -> None:
        """Connections are long-lived, so after a gateway restart its clients stay on the
        survivors: closing each one after a bounded, jittered age (1012, like a drain) makes
        every client go back through the load balancer now and then, which spreads them over
        all gateways. Nothing is lost: the client resumes from its cursors."""
        age = self.limits.max_connection_age_s
        if age <= 0:
            return
        jitter = min(1.0, max(0.0, self.limits.max_connection_age_jitter))
        delay = age * random.uniform(1 - jitter, 1 + jitter)  # noqa: S311 (spread, not secret)
        loop = tornado.ioloop.IOLoop.current()
        self._timers.append(loop.call_later(delay, self._max_age_reached))

    def _max_age_reached(self) -> None:
        if self.state is State.READY and not self.closing:
            log.debug("max connection age reached")
            self.close_with(close_codes.RESTARTING)

    def close_with(self, code: CloseCode) -> None:
        self.closing = True
        self._m.closes.labels(str(code.code)).inc()
        self.writer.close(code)

    def on_close(self) -> None:
        was_ready = self.state is State.READY
        self.state = State.CLOSED
        self.writer.closed()
        for timer in self._timers:
            tornado.ioloop.IOLoop.current().remove_timeout(timer)
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        self.cursors.cancel()
        if was_ready:
            self.gateway.forget(self)
            self._m.connections.dec()
            self._m.disconnects.inc()
            self.gateway.spawn(self._cleanup())

    async def _cleanup(self) -> None:
        await self.gateway.leave(self, self.channels)
        if self.principal is not None:
            try:
                await self.deps.presence.disconnect(self.principal, self.connection_id)
            except Exception:
                log.warning("presence disconnect failed", exc_info=True)
