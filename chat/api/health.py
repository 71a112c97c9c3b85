"""Liveness, readiness, the OpenAPI document, and Prometheus metrics (the latter on the
internal metrics listener only, see chat/app/http.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import tornado.web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from chat.api.base import JsonBase, JsonHandler
from chat.api.openapi_parts import op
from chat.domain.accounts import AccountService
from chat.metrics import Metrics


class HealthHandler(JsonHandler):
    route = "/healthz"
    docs = {
        "get": op("Liveness: the process serves requests", None, "Health", auth=False, stores=False)
    }

    def get(self) -> None:
        self.send_json({"status": "ok"})


class ReadyHandler(JsonBase):
    route = "/readyz"
    docs = {
        "get": op(
            "Readiness: every dependency this process needs answers (gateway: Redis; API: "
            "Redis and PostgreSQL; embedded: SQLite; never the archive); 503 names the one "
            "that does not, or says `draining`",
            None,
            "Health",
            auth=False,
            errors=(503,),
        )
    }

    def initialize(
        self,
        *,
        metrics: Metrics,
        accounts: AccountService,
        readiness: Callable[[], Awaitable[dict[str, str]]],
        draining: Callable[[], bool],
    ) -> None:
        """`readiness`: the probes of what this process serves, by name ("ok" or the error);
        `draining`: true from SIGTERM on."""
        self.setup(metrics, accounts)
        self.readiness = readiness
        self.draining = draining

    async def get(self) -> None:
        checks = await self.readiness()
        draining = self.draining()
        ok = all(v == "ok" for v in checks.values()) and not draining
        status = "ok" if ok else ("draining" if draining else "unavailable")
        self.send_json({"status": status, "checks": checks}, 200 if ok else 503)


class MetricsHandler(tornado.web.RequestHandler):
    """`GET /metrics` in the Prometheus text format. Mounted only on the internal listener
    (CHAT_METRICS_PORT), so it is not part of the public API nor its OpenAPI document."""

    route = "/metrics"

    def initialize(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def get(self) -> None:
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest(self.registry))


class OpenApiHandler(JsonBase):
    route = "/openapi.json"
    docs = {
        "get": {
            "summary": "This document",
            "security": [],
            "responses": {"200": {"description": "OK"}},
        }
    }

    def initialize(
        self, *, metrics: Metrics, accounts: AccountService, document: dict[str, Any]
    ) -> None:
        """`document`: chat.api.openapi.document(), which is built from the route table that
        lists this handler, so it is handed in rather than imported."""
        self.setup(metrics, accounts)
        self.document = document

    def get(self) -> None:
        self.send_json(self.document)
