"""Readiness: the dependencies a process cannot serve without, probed by name."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from chat.config import Backend
from chat.domain.chat import Ports

PROBE_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Readiness:
    backend: Backend
    ports: Ports

    async def check(self, serves: Iterable[str] = ("api", "gateway")) -> dict[str, str]:
        """The dependencies the process needs to serve `serves` ("api", "gateway"), by name:
        "ok", or the error. Readiness fails on any other answer, so only what the component
        cannot work without is probed (guarantee 5): a gateway needs Redis, the API Redis and
        PostgreSQL, embedded mode its SQLite files. The archive (MongoDB) is never a readiness
        dependency: an archive outage delays persistence and older history, not chat."""
        ports = self.ports
        probes: dict[str, Callable[[], Awaitable[object]]]
        if self.backend is Backend.EMBEDDED:

            async def sqlite() -> None:
                await ports.log.last_seq("readiness-probe")  # messages.db
                await ports.accounts.get_user("readiness-probe")  # accounts.db

            probes = {"sqlite": sqlite}
        else:
            # A plain read: the log's own calls may consult the archive (a missing head).
            probes = {"redis": lambda: ports.sessions.is_active("readiness-probe")}
            if "api" in serves:
                probes["postgresql"] = lambda: ports.accounts.get_user("readiness-probe")
        checks = {}
        for name, probe in probes.items():
            try:
                await asyncio.wait_for(probe(), PROBE_TIMEOUT_S)
                checks[name] = "ok"
            except Exception as exc:
                checks[name] = f"{type(exc).__name__}: {exc}"
        return checks
