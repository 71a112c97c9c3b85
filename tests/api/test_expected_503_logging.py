"""An expected 503 (a dependency is down) is one warning line naming it, not an uncaught
exception with a traceback; a real fault still logs its traceback (issue 12, item 6)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
import tornado.httpserver
import tornado.web

from chat.api.base import JsonHandler, log_request
from chat.domain.errors import Unavailable
from tests.support.fixtures import Server, free_port


class DownHandler(JsonHandler):
    route = "/down"

    async def get(self) -> None:
        raise Unavailable(
            "MongoDB is unavailable: connection refused",
            code="dependency_unavailable",
            dependency="MongoDB",
        )


class BuggyHandler(JsonHandler):
    route = "/buggy"

    async def get(self) -> None:
        raise RuntimeError("a bug")


@pytest.fixture
async def tiny(server: Server) -> AsyncIterator[str]:
    deps = {"metrics": server.rt.metrics, "accounts": server.rt.chat.accounts}
    app = tornado.web.Application(
        [(h.route, h, deps) for h in (DownHandler, BuggyHandler)],
        log_function=log_request,
    )
    http = tornado.httpserver.HTTPServer(app)
    port = free_port()
    http.listen(port, "127.0.0.1")
    yield f"http://127.0.0.1:{port}"
    http.stop()
    await http.close_all_connections()


async def test_an_expected_503_is_one_warning_line(
    tiny: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with httpx.AsyncClient(base_url=tiny) as client:
        r = await client.get("/down", params={"code": "secret-oidc-code"})
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "dependency_unavailable"
    records = [rec for rec in caplog.records if rec.name.startswith(("tornado", "chat"))]
    assert [(rec.levelno, rec.exc_info) for rec in records] == [(logging.WARNING, None)]
    line = records[0].getMessage()
    assert line.startswith("503 GET /down (127.0.0.1) ")
    assert line.endswith(": dependency_unavailable: MongoDB is unavailable: connection refused")
    assert "secret-oidc-code" not in line


async def test_a_real_fault_still_logs_its_traceback(
    tiny: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with httpx.AsyncClient(base_url=tiny) as client:
        r = await client.get("/buggy")
    assert r.status_code == 500 and r.json()["error"]["code"] == "internal"
    faults = [rec for rec in caplog.records if rec.exc_info]
    assert len(faults) == 1 and faults[0].levelno == logging.ERROR
    assert any(
        rec.levelno == logging.ERROR and "500 GET /buggy" in rec.getMessage()
        for rec in caplog.records
    )
