"""The Tornado applications of a process: the API and/or the gateway's /ws (and the web client)
on the public port, `/metrics` alone on the internal one.

Each handler is given, as `initialize` arguments, the services it calls and nothing else:
every JSON handler its metrics and the AccountService (to authenticate), plus what its module
needs (`_handler_kwargs`). The gateway's hub is built in one place, `mount_gateway`."""

from __future__ import annotations

from typing import Any

import tornado.web
from prometheus_client import CollectorRegistry

from chat.api.base import NotFoundHandler, log_request
from chat.api.conversations import ConversationsApi, MessagingApi, PresenceApi
from chat.api.health import MetricsHandler, OpenApiHandler, ReadyHandler
from chat.api.oidc import OidcApi
from chat.api.openapi import document
from chat.api.routes import API_HANDLERS, OPS_HANDLERS, tornado_pattern
from chat.api.web import web_rules
from chat.app.runtime import Runtime
from chat.ws.deps import GatewayDeps
from chat.ws.gateway import GatewayHandler
from chat.ws.hub import Gateway

Rule = tuple[str, type[tornado.web.RequestHandler], dict[str, Any]]


def _handler_kwargs(
    rt: Runtime, handler: type[tornado.web.RequestHandler], serves: tuple[str, ...]
) -> dict[str, Any]:
    """The `initialize` arguments of one API handler: what its base class declares."""
    chat = rt.chat
    kwargs: dict[str, Any] = {"metrics": rt.metrics, "accounts": chat.accounts}
    if issubclass(handler, ConversationsApi):
        kwargs["conversations"] = chat.conversations
    elif issubclass(handler, MessagingApi):
        kwargs["messaging"] = chat.messaging
    elif issubclass(handler, PresenceApi):
        kwargs["presence"] = chat.presence
    elif issubclass(handler, OidcApi):
        kwargs["oidc"] = rt.oidc
        kwargs["display_name"] = rt.settings.oidc_display_name
        kwargs["secure_cookies"] = rt.settings.origin.startswith("https://")
    elif issubclass(handler, ReadyHandler):
        kwargs["readiness"] = lambda: rt.readiness.check(serves)
        kwargs["draining"] = lambda: rt.draining
    elif issubclass(handler, OpenApiHandler):
        kwargs["document"] = document()
    return kwargs


def mount_gateway(rt: Runtime) -> Rule:
    """The /ws route. The process has one hub (one bus subscription, one drain on SIGTERM),
    built on the first mount; a second application of the same runtime shares it."""
    if rt.gateway is None:
        chat, settings = rt.chat, rt.settings
        hub = Gateway(
            GatewayDeps(
                accounts=chat.accounts,
                presence=chat.presence,
                messaging=chat.messaging,
                conversations=chat.ports.conversations,
                bus=chat.ports.bus,
                limits=settings.limits,
                metrics=rt.metrics,
                origins=settings.origins,
                origins_exclusive=bool(settings.allowed_origins),
                drain_timeout_s=settings.drain_timeout_s,
                draining=lambda: rt.draining,
                membership=rt.membership,
            )
        )
        rt.on_drain(hub.drain)
        rt.gateway = hub
    return (r"/ws", GatewayHandler, {"gateway": rt.gateway})


def make_app(
    rt: Runtime, *, api: bool = True, gateway: bool = True, web: bool = True
) -> tornado.web.Application:
    serves = tuple(name for name, on in (("api", api), ("gateway", gateway)) if on)
    handlers = OPS_HANDLERS + (API_HANDLERS if api else ())
    rules: list[Rule] = [
        (tornado_pattern(h.route), h, _handler_kwargs(rt, h, serves)) for h in handlers
    ]
    if gateway:
        rules.append(mount_gateway(rt))
    if web:
        rules += web_rules()
    return tornado.web.Application(
        rules,
        default_handler_class=NotFoundHandler,
        default_handler_args={"metrics": rt.metrics, "accounts": rt.chat.accounts},
        websocket_max_message_size=rt.settings.limits.max_frame_bytes,
        websocket_ping_interval=rt.settings.limits.heartbeat_interval_s,
        websocket_ping_timeout=rt.settings.limits.heartbeat_interval_s,
        compress_response=False,
        cookie_secret=rt.cookie_secret,
        xheaders=True,
        log_function=log_request,
    )


def make_metrics_app(registry: CollectorRegistry) -> tornado.web.Application:
    """The internal listener's application: `/metrics` and nothing else (Tornado's plain 404
    for any other path)."""
    return tornado.web.Application([(MetricsHandler.route, MetricsHandler, {"registry": registry})])
