"""An embedded chat server started in this process on a free port, per test module (or per
test with custom settings), reached only through its real HTTP and WebSocket interfaces. It is
built by `chat.server.start`, the function production runs (`serve`), so tests exercise
production's HTTP server, not a hand-assembled one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from chat.app.runtime import Runtime
from chat.config import Settings
from chat.domain.limits import Limits
from chat.domain.passwords import PasswordHasher
from chat.server import Running, start
from tests.support.clients import Account, Api, Ws
from tools.harness.net import free_port

# Cheap hashing for speed; one test checks the production (OWASP) parameters separately.
FAST_HASHER = PasswordHasher(memory_kib=1024, time_cost=1)


@dataclass
class Server:
    running: Running
    """What `chat.server.start` returned: the runtime, the HTTP server, the metrics listener."""
    settings: Settings
    api: Api

    @property
    def rt(self) -> Runtime:
        return self.running.rt

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
        """Production's drain: stop accepting, close sockets with 1012, close the runtime."""
        await self.running.stop()
        await self.api.close()


async def serve(
    settings: Settings,
    *,
    worker: bool,
    api: bool = True,
    gateway: bool = True,
    web: bool = True,
) -> Server:
    """The parts of ``settings`` on 127.0.0.1:``settings.port`` (and, with ``worker``, the
    in-process worker), started by `chat.server.start`, the function `chatcluster dev`, `api`
    and `ws` run: the same HTTP server options (1 MiB body cap, X-Real-IP trusted), the same
    drain, and the metrics listener when ``settings.metrics_port`` is set."""
    # Cheap password hashing is the one way the test server differs from production's.
    running = await start(
        settings, api=api, gateway=gateway, web=web, worker=worker, hasher=FAST_HASHER
    )
    return Server(running, settings, Api(f"http://127.0.0.1:{settings.port}"))


async def start_server(data_dir: Path, limits: Limits | None = None, **overrides: Any) -> Server:
    port = overrides.pop("port", None) or free_port()
    # No metrics listener unless asked for (its default port, 9191, is shared by every test).
    overrides.setdefault("metrics_port", 0)
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
