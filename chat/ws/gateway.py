"""The Tornado side of one WebSocket: the handshake (Origin rule, RFC 6455 strictness), then
every frame in goes to the connection's `Session` and every frame out through its `Writer`.

What a connection does lives elsewhere: `session.py` (states, auth, dispatch, close policy),
`outbound.py` (coalescing, budget, backpressure), `hub.py` (`Gateway`: routing, the bus
subscription, drain; re-exported here with `GatewayDeps` for the app's wiring).
"""

from __future__ import annotations

import tornado.httputil
import tornado.iostream
import tornado.websocket

from chat.logs import bind, request_id_from
from chat.ws.deps import GatewayDeps
from chat.ws.hub import Gateway
from chat.ws.outbound import Writer
from chat.ws.rfc6455 import StrictProtocol
from chat.ws.session import Session

__all__ = ["Gateway", "GatewayDeps", "GatewayHandler"]


class GatewayHandler(tornado.websocket.WebSocketHandler):
    def initialize(self, gateway: Gateway) -> None:
        self.deps = gateway.deps
        limits = gateway.deps.limits
        self.writer = Writer(
            limits.outbound_queue_frames,
            limits.outbound_queue_bytes,
            gateway.frames,
            gateway.stats,
            self,
            gateway.flusher,
        )
        self.session = Session(gateway, self.writer)
        # This connection's task runs every frame: its log lines carry these from here on.
        request_id = request_id_from(self.request.headers.get("X-Request-ID"))
        bind(request_id=request_id, connection_id=self.session.connection_id, user_id=None)

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

    def _detach_stream(self) -> tornado.iostream.IOStream:
        """Tornado's, without its guard: it also sets nine HTTP methods (`write`, `finish`, ...)
        on the instance to ones that raise, which turns this handler's attribute dict into a
        private one, ~1.6 KiB per socket (memory per idle socket, docs/performance.md). Nothing
        here calls those methods after the upgrade: frames go out through `Writer`."""
        return self.detach()

    async def open(self, *args: str, **kwargs: str) -> None:
        # Writes are already coalesced per loop iteration (outbound.py): Nagle would only add
        # its delayed-ACK stall (~40 ms) to small frames such as acks.
        self.set_nodelay(True)
        assert self.ws_connection is not None
        self.writer.attach(self.ws_connection.stream)
        # The upgrade request's headers are read only during the handshake (origin, key,
        # extensions, request id): an idle socket need not keep them (~1.5 KiB).
        self.request.headers = tornado.httputil.HTTPHeaders()
        await self.session.start()

    async def on_message(self, message: str | bytes) -> None:
        await self.session.receive(message)

    def on_close(self) -> None:
        self.writer.closed()
        self.session.closed()
