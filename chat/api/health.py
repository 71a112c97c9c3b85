"""Liveness, readiness, the OpenAPI document, and Prometheus metrics (the latter on the
internal metrics listener only, see chat/server.py)."""

from __future__ import annotations

import tornado.web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from chat.api.base import JsonHandler
from chat.api.openapi_parts import op


class HealthHandler(JsonHandler):
    route = "/healthz"
    docs = {
        "get": op("Liveness: the process serves requests", None, "Health", auth=False, stores=False)
    }

    def get(self) -> None:
        self.send_json({"status": "ok"})


class ReadyHandler(JsonHandler):
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

    async def get(self) -> None:
        checks = await self.rt.check_dependencies(self.application.settings["chat_serves"])
        ok = all(v == "ok" for v in checks.values()) and not self.rt.draining
        status = "ok" if ok else ("draining" if self.rt.draining else "unavailable")
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


class OpenApiHandler(JsonHandler):
    route = "/openapi.json"
    docs = {
        "get": {
            "summary": "This document",
            "security": [],
            "responses": {"200": {"description": "OK"}},
        }
    }

    def get(self) -> None:
        from chat.api.openapi import document

        self.send_json(document())
