"""The OpenAPI 3.1 document, assembled from the handlers' own `docs`."""

from __future__ import annotations

from typing import Any

from chat import __version__
from chat.api.openapi_parts import SCHEMAS, param_schema, ref
from chat.api.routes import API_HANDLERS, OPS_HANDLERS


def document() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for handler in (*API_HANDLERS, *OPS_HANDLERS):
        ops: dict[str, Any] = dict(getattr(handler, "docs", {}))
        params = [
            {
                "name": part[1:-1],
                "in": "path",
                "required": True,
                "schema": param_schema(part[1:-1]),
            }
            for part in handler.route.split("/")
            if part.startswith("{")
        ]
        if params:
            ops = {m: {**o, "parameters": params + o.get("parameters", [])} for m, o in ops.items()}
        paths[handler.route] = ops
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "chatcluster API",
            "version": __version__,
            "description": "Live delivery is over the WebSocket at /ws; see docs/protocol.md.",
        },
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "responses": {
                "Error": {
                    "description": "An error with a stable code",
                    "content": {"application/json": {"schema": ref("Error")}},
                },
                "RateLimited": {
                    "description": "`rate_limited`: over a token bucket; `details.retry_after_ms`"
                    " (and `details.scope` for login and registration: `ip` or `username`)",
                    "headers": {
                        "Retry-After": {
                            "description": "Seconds to wait before retrying",
                            "schema": {"type": "integer", "minimum": 1},
                        }
                    },
                    "content": {"application/json": {"schema": ref("Error")}},
                },
            },
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
        "security": [{"bearer": []}],
    }
