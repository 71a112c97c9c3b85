"""An embedded chat server started in this process on a free port, per test module (or per
test with custom settings), reached only through its real HTTP and WebSocket interfaces."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import tornado.httpserver

from chat.config import Settings
from chat.domain.limits import Limits
from chat.domain.passwords import PasswordHasher
from chat.runtime import Runtime
from tests.support.clients import Account, Api, Ws
from tools.harness.net import free_port

# Cheap hashing for speed; one test checks the production (OWASP) parameters separately.
FAST_HASHER = PasswordHasher(memory_kib=1024, time_cost=1)


@dataclass
class Server:
    rt: Runtime
    http: tornado.httpserver.HTTPServer
    settings: Settings
    api: Api

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.settings.port}/ws"

    @property
    def origin(self) -> str:
        return self.settings.origin

    async def ws(self, account: Account | None = None, **kwargs: Any) -> Ws:
        client = await Ws.connect(self.ws_url, self.origin, **kwargs)
        if account is not None:
            await client.auth(account.access)
        return client

    async def stop(self) -> None:
        self.http.stop()
        await self.rt.drain()
        await self.http.close_all_connections()
        await self.api.close()
        await self.rt.close()


async def serve(settings: Settings, *, worker: bool) -> Server:
    """API and gateway of ``settings`` on 127.0.0.1:``settings.port`` (and, with ``worker``,
    the in-process worker)."""
    from chat.api.app import make_app
    from chat.runtime import open_runtime

    rt = await open_runtime(settings, hasher=FAST_HASHER)
    http = tornado.httpserver.HTTPServer(make_app(rt))
    http.listen(settings.port, "127.0.0.1")
    if worker:
        rt.start_worker()
    return Server(rt, http, settings, Api(f"http://127.0.0.1:{settings.port}"))


async def start_server(data_dir: Path, limits: Limits | None = None, **overrides: Any) -> Server:
    port = overrides.pop("port", None) or free_port()
    settings = Settings(
        data_dir=data_dir,
        port=port,
        limits=limits or Limits(),
        sweep_interval_s=1.0,
        drain_timeout_s=2.0,
        **overrides,
    )
    return await serve(settings, worker=True)


ServerFactory = Callable[..., Awaitable[Server]]


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    # A generous send rate: tests of the limiter build their own server.
    limits = with_limits(send_burst=10_000, send_rate_per_s=10_000)
    srv = await start_server(tmp_path_factory.mktemp("chat"), limits, admins=frozenset({"root"}))
    yield srv
    await srv.stop()


@pytest.fixture
async def make_server(tmp_path: Path) -> AsyncIterator[ServerFactory]:
    """A server with custom limits or settings for one test."""
    started: list[Server] = []

    async def make(limits: Limits | None = None, **overrides: Any) -> Server:
        n = len(started)
        srv = await start_server(tmp_path / f"s{n}", limits, **overrides)
        started.append(srv)
        return srv

    yield make
    for srv in started:
        await srv.stop()


def with_limits(**changes: Any) -> Limits:
    return replace(Limits(), **changes)
