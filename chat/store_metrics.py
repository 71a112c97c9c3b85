"""Latency and errors of every store call, measured at the ports the domain calls (one wrapper
per port, whatever the implementation: SQLite, Redis, PostgreSQL or MongoDB).

The bus and the job queue are left out: their calls are fire-and-forget publishes whose cost is
already in the send and delivery histograms."""

from __future__ import annotations

import dataclasses
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

from chat.domain.chat import Ports
from chat.domain.errors import RateLimited
from chat.metrics import Metrics

TIMED_PORTS = ("accounts", "conversations", "log", "archive", "sessions", "presence", "limiter")


class TimedPort:
    """Forwards to the store; each coroutine method is wrapped once, on first use."""

    def __init__(self, inner: object, port: str, metrics: Metrics) -> None:
        self._inner = inner
        self._port = port
        self._metrics = metrics

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not inspect.iscoroutinefunction(attr):
            return attr
        timed = _timed(attr, self._metrics, self._port, name)
        setattr(self, name, timed)  # found in __dict__ next time: no second lookup
        return timed


def _timed(
    call: Callable[..., Awaitable[Any]], metrics: Metrics, port: str, method: str
) -> Callable[..., Awaitable[Any]]:
    latency = metrics.store_latency.labels(port, method)
    errors = metrics.store_errors.labels(port, method)

    async def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await call(*args, **kwargs)
        except RateLimited:
            # `log.append` takes the send's token itself: a refusal is the client's limit
            # (a 429 answer), not a failure of the store.
            raise
        except Exception:
            errors.inc()
            raise
        finally:
            latency.observe(time.perf_counter() - started)

    return timed


def timed_ports(ports: Ports, metrics: Metrics) -> Ports:
    wrapped: dict[str, Any] = {
        name: TimedPort(getattr(ports, name), name, metrics) for name in TIMED_PORTS
    }
    return dataclasses.replace(ports, **wrapped)
