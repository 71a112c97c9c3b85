"""Running an HTTP/WebSocket process until SIGTERM or SIGINT, then draining it.

Prometheus metrics are served by a second, internal listener on `settings.metrics_port`
(CHAT_METRICS_PORT; 0 disables it), never on the public port that the Ingress routes."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import tornado.httpserver
import uvloop

from chat.app.http import make_app, make_metrics_app
from chat.app.runtime import Runtime, open_runtime
from chat.config import Settings
from chat.domain.passwords import PasswordHasher

log = logging.getLogger(__name__)


@dataclass
class Running:
    rt: Runtime
    server: tornado.httpserver.HTTPServer
    metrics: tornado.httpserver.HTTPServer | None
    """The internal /metrics listener, or None when `metrics_port` is 0."""

    async def stop(self) -> None:
        """Drain: stop accepting, close sockets with 1012, then close the runtime."""
        self.server.stop()
        await self.rt.drain()
        await self.server.close_all_connections()
        if self.metrics is not None:
            # Last, so the drain itself can still be scraped.
            self.metrics.stop()
            await self.metrics.close_all_connections()
        await self.rt.close()


async def start(
    settings: Settings,
    *,
    api: bool,
    gateway: bool,
    web: bool,
    worker: bool,
    hasher: PasswordHasher | None = None,
) -> Running:
    """`hasher` replaces the OWASP-strength password hasher (tests register hundreds of
    accounts with cheap parameters); production never passes one."""
    # Serving HTTP and WebSockets needs no archive: start even while MongoDB is down.
    rt = await open_runtime(settings, archive_optional=not worker, hasher=hasher)
    app = make_app(rt, api=api, gateway=gateway, web=web)
    # The cap for routes that are not JSON handlers (web client, WebSocket upgrade): JSON
    # handlers lift it per request and apply their own limits (chat/api/body.py), so an
    # oversize body gets a 413 JSON error instead of Tornado's bare 400 and a reset.
    server = tornado.httpserver.HTTPServer(app, xheaders=True, max_body_size=1024 * 1024)
    metrics = None
    try:
        server.listen(settings.port, settings.host)
        if settings.metrics_port:
            metrics = tornado.httpserver.HTTPServer(make_metrics_app(rt.metrics.registry))
            metrics.listen(settings.metrics_port, settings.host)
    except BaseException:
        server.stop()
        await rt.close()
        raise
    if worker:
        rt.start_worker()
    return Running(rt, server, metrics)


def run(main: Coroutine[Any, Any, None], event_loop: str) -> None:
    """Run `main` on the event loop `CHAT_EVENT_LOOP` names (`uvloop` or `asyncio`)."""
    factory = uvloop.new_event_loop if event_loop == "uvloop" else None
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main)


async def serve(
    settings: Settings, *, api: bool, gateway: bool, web: bool, worker: bool, banner: str = ""
) -> None:
    running = await start(settings, api=api, gateway=gateway, web=web, worker=worker)
    loop = asyncio.get_running_loop()
    log.info(
        "serving on the %s event loop", "uvloop" if isinstance(loop, uvloop.Loop) else "asyncio"
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if banner:
        print(banner, flush=True)
    await stop.wait()
    log.info("shutting down: draining connections")
    await running.stop()
