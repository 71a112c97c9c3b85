"""Running an HTTP/WebSocket process until SIGTERM or SIGINT, then draining it."""

from __future__ import annotations

import asyncio
import logging
import signal

import tornado.httpserver

from chat.api.app import make_app
from chat.config import Settings
from chat.runtime import Runtime, open_runtime

log = logging.getLogger(__name__)


async def start(
    settings: Settings, *, api: bool, gateway: bool, web: bool, worker: bool
) -> tuple[Runtime, tornado.httpserver.HTTPServer]:
    # Serving HTTP and WebSockets needs no archive: start even while MongoDB is down.
    rt = await open_runtime(settings, archive_optional=not worker)
    app = make_app(rt, api=api, gateway=gateway, web=web)
    # The cap for routes that are not JSON handlers (web client, WebSocket upgrade): JSON
    # handlers lift it per request and apply their own limits (chat/api/body.py), so an
    # oversize body gets a 413 JSON error instead of Tornado's bare 400 and a reset.
    server = tornado.httpserver.HTTPServer(app, xheaders=True, max_body_size=1024 * 1024)
    server.listen(settings.port, settings.host)
    if worker:
        rt.start_worker()
    return rt, server


async def serve(
    settings: Settings, *, api: bool, gateway: bool, web: bool, worker: bool, banner: str = ""
) -> None:
    rt, server = await start(settings, api=api, gateway=gateway, web=web, worker=worker)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if banner:
        print(banner, flush=True)
    await stop.wait()
    log.info("shutting down: draining connections")
    server.stop()
    await rt.drain()
    await server.close_all_connections()
    await rt.close()
