"""The server the tests talk to is the one production runs: `tests.support.fixtures` builds it
with `chat.server.start`, as `chatcluster dev|api|ws` do, not with a hand-assembled
`HTTPServer(make_app(...))` that lacks production's options."""

from __future__ import annotations

import logging

import httpx
import pytest

from tests.support.fixtures import Server


async def test_it_trusts_the_ingress_client_address_like_production(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    """xheaders: behind the Ingress, the client's address is X-Real-IP (per-IP login limits
    and the access log use it), not the proxy's."""
    caplog.set_level(logging.INFO, logger="tornado.access")
    r = await server.api.http.get("/healthz", headers={"X-Real-IP": "203.0.113.7"})
    assert r.status_code == 200
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "tornado.access"]
    assert any(line.startswith("200 GET /healthz (203.0.113.7) ") for line in lines), lines


async def test_it_caps_bodies_of_non_json_routes_like_production(server: Server) -> None:
    """max_body_size: routes that are not JSON handlers (the web client here) keep the 1 MiB
    server-wide cap: an oversize body is not read, the connection is dropped (JSON routes
    answer 413 instead: tests/api/test_bodies.py)."""
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        small = await client.post("/", content=b"x" * 1024)
        assert small.status_code == 405  # read, then refused by the route: not about size
        with pytest.raises(httpx.TransportError):
            await client.post("/", content=b"x" * (2 * 1024 * 1024))
