"""CHAT_LOG_FORMAT: text by default, JSON lines on request, each with the request, connection,
user and conversation ids of the context it was logged in."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from chat.config import ConfigError, load
from chat.logs import ContextFilter, JsonFormatter, request_id_from
from tests.support.clients import Ws
from tests.support.fixtures import Server


def test_log_format_setting() -> None:
    assert load({}).log_format == "text"
    assert load({"CHAT_LOG_FORMAT": "json"}).log_format == "json"
    with pytest.raises(ConfigError, match="CHAT_LOG_FORMAT='xml' is invalid"):
        load({"CHAT_LOG_FORMAT": "xml"})


def test_request_ids_from_clients_are_kept_only_when_sane() -> None:
    assert request_id_from("abc-123") == "abc-123"
    assert request_id_from(None) != request_id_from(None)
    for bad in ("", "a b", "x" * 129, "line\nforged"):
        fresh = request_id_from(bad)
        assert fresh != bad and len(fresh) == 32


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.addFilter(ContextFilter())
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def captured() -> Iterator[Captured]:
    handler = Captured()
    loggers = [logging.getLogger(n) for n in ("tornado.access", "chat.ws.gateway")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    yield handler
    for lg, level in zip(loggers, levels, strict=True):
        lg.removeHandler(handler)
        lg.setLevel(level)


async def test_http_lines_carry_the_clients_request_id(server: Server, captured: Captured) -> None:
    reply = await server.api.http.get("/healthz", headers={"X-Request-ID": "trace-42"})
    assert reply.headers["X-Request-ID"] == "trace-42"
    missing = await server.api.http.get("/api/v1/nope", headers={"X-Request-ID": "bad id"})
    assert missing.status_code == 404
    fresh = missing.headers["X-Request-ID"]
    assert fresh != "bad id" and len(fresh) == 32
    access = [line for line in captured.lines if line["logger"] == "tornado.access"]
    assert [line.get("request_id") for line in access] == ["trace-42", fresh]
    assert {"ts", "level", "message"} <= access[0].keys()


async def test_ws_lines_carry_connection_user_and_conversation(
    server: Server, captured: Captured
) -> None:
    alice, bob = await server.api.register(), await server.api.register()
    cid = await server.api.dm(alice, bob)
    ws = await Ws.connect(server.ws_url, server.origin)
    ready = await ws.auth(alice.access)
    refused = await ws.request({"type": "read", "conversation_id": cid, "seq": "not a number"})
    assert refused["type"] == "error"
    await ws.close()
    mine = [line for line in captured.lines if line.get("connection_id") == ready["connection_id"]]
    authenticated = next(line for line in mine if line["message"] == "authenticated")
    assert authenticated["user_id"] == alice.id
    refusal = next(line for line in mine if str(line["message"]).startswith("frame refused"))
    assert refusal["conversation_id"] == cid and refusal["user_id"] == alice.id


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_configure_installs_one_handler_in_the_format(fmt: str) -> None:
    from chat.logs import TEXT_FORMAT, configure

    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    try:
        configure("warning", fmt)
        (handler,) = root.handlers
        assert root.level == logging.WARNING
        if fmt == "json":
            assert isinstance(handler.formatter, JsonFormatter)
        else:
            assert handler.formatter is not None and handler.formatter._fmt == TEXT_FORMAT
    finally:
        root.handlers[:] = saved
        root.setLevel(level)
