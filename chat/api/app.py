"""The Tornado application: API and/or gateway routes, plus the web client in `dev`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tornado.web
from prometheus_client import CollectorRegistry

from chat.api.base import NotFoundHandler, log_request
from chat.api.health import MetricsHandler
from chat.api.routes import API_HANDLERS, OPS_HANDLERS, tornado_pattern
from chat.runtime import Runtime

WEB_DIR = Path(__file__).resolve().parent.parent / "web"


class IndexHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header(
            "Content-Security-Policy",
            "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
            "style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'",
        )
        self.set_header("X-Content-Type-Options", "nosniff")
        self.finish((WEB_DIR / "index.html").read_bytes())


def make_app(
    rt: Runtime, *, api: bool = True, gateway: bool = True, web: bool = True
) -> tornado.web.Application:
    rules: list[Any] = [(tornado_pattern(h.route), h, {"rt": rt}) for h in OPS_HANDLERS]
    if api:
        rules += [(tornado_pattern(h.route), h, {"rt": rt}) for h in API_HANDLERS]
    if gateway:
        from chat.ws.gateway import Gateway, GatewayDeps, GatewayHandler

        # One gateway per runtime: a process may mount /ws on more than one app. Until the
        # composition root owns that instance, `rt.parts` remembers it (tests look it up
        # there); the gateway itself sees only its deps.
        hub = rt.parts.get("gateway")
        if not isinstance(hub, Gateway):
            chat = rt.chat
            hub = rt.parts["gateway"] = Gateway(
                GatewayDeps(
                    accounts=chat.accounts,
                    presence=chat.presence,
                    messaging=chat.messaging,
                    conversations=chat.ports.conversations,
                    bus=chat.ports.bus,
                    limits=rt.settings.limits,
                    metrics=rt.metrics,
                    origins=rt.settings.origins,
                    origins_exclusive=bool(rt.settings.allowed_origins),
                    drain_timeout_s=rt.settings.drain_timeout_s,
                    draining=lambda: rt.draining,
                )
            )
            rt.on_drain(hub.drain)
        rules.append((r"/ws", GatewayHandler, {"gateway": hub}))
    if web:
        rules += [
            (r"/", IndexHandler),
            (r"/static/(.*)", tornado.web.StaticFileHandler, {"path": str(WEB_DIR)}),
        ]
    return tornado.web.Application(
        rules,
        default_handler_class=NotFoundHandler,
        default_handler_args={"rt": rt},
        websocket_max_message_size=rt.settings.limits.max_frame_bytes,
        websocket_ping_interval=rt.settings.limits.heartbeat_interval_s,
        websocket_ping_timeout=rt.settings.limits.heartbeat_interval_s,
        compress_response=False,
        cookie_secret=rt.cookie_secret,
        xheaders=True,
        log_function=log_request,
        chat_serves=tuple(name for name, on in (("api", api), ("gateway", gateway)) if on),
    )


def make_metrics_app(registry: CollectorRegistry) -> tornado.web.Application:
    """The internal listener's application: `/metrics` and nothing else (Tornado's plain 404
    for any other path)."""
    return tornado.web.Application([(MetricsHandler.route, MetricsHandler, {"registry": registry})])
