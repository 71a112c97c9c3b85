"""Request bodies, on a server wired as `chatcluster api` wires it (chat.server.start, with its
1 MiB server-wide cap): any oversize body gets the documented 413 JSON error, not a bare 400 or a
reset (issue 10, item 11); bodies must be declared JSON, else 415 (item 13)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import orjson
import pytest

from chat.api.body import MAX_DRAIN_BYTES, MAX_JSON_BODY
from chat.config import Settings
from tests.support.clients import unique
from tests.support.fixtures import free_port

REGISTER = "/api/v1/auth/register"


@pytest.fixture(scope="module")
async def base_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    from chat.server import start

    settings = Settings(
        data_dir=tmp_path_factory.mktemp("bodies"), port=free_port(), metrics_port=0
    )
    running = await start(settings, api=True, gateway=False, web=False, worker=False)
    yield f"http://127.0.0.1:{settings.port}"
    await running.stop()


def _registration() -> bytes:
    return orjson.dumps({"username": unique(), "password": "correct horse"})


def _padded(size: int) -> bytes:
    """A JSON object of exactly `size` bytes."""
    head = b'{"username": "x", "pad": "'
    return head + b"a" * (size - len(head) - 2) + b'"}'


def _assert_413(r: httpx.Response) -> None:
    assert r.status_code == 413, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    error = r.json()["error"]
    assert error["code"] == "payload_too_large"
    assert error["details"]["limit"] == MAX_JSON_BODY


@pytest.mark.parametrize("size", [MAX_JSON_BODY + 1, 2 * 1024 * 1024, 20 * 1024 * 1024])
async def test_oversize_bodies_get_413_json_and_the_connection_stays_usable(
    base_url: str, size: int
) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        r = await client.post(
            REGISTER, content=_padded(size), headers={"Content-Type": "application/json"}
        )
        _assert_413(r)
        ok = await client.post(
            REGISTER, content=_registration(), headers={"Content-Type": "application/json"}
        )
        assert ok.status_code == 201, ok.text


async def test_a_body_at_the_limit_is_read(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        r = await client.post(
            REGISTER, content=_padded(MAX_JSON_BODY), headers={"Content-Type": "application/json"}
        )
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_username"


async def test_oversize_chunked_body_gets_413(base_url: str) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(32):
            yield b" " * 65536

    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        r = await client.post(
            REGISTER, content=chunks(), headers={"Content-Type": "application/json"}
        )
    _assert_413(r)


async def _raw(base_url: str, head: bytes) -> bytes:
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(head)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)  # until the server closes
    writer.close()
    await writer.wait_closed()
    return answer


@pytest.mark.parametrize(
    "extra",
    [
        f"Content-Length: {MAX_DRAIN_BYTES + 1}\r\n",
        "Content-Length: 1073741824\r\n",
        "Content-Length: 2097152\r\nExpect: 100-continue\r\n",
    ],
)
async def test_hopeless_bodies_are_refused_before_they_are_sent(base_url: str, extra: str) -> None:
    head = (
        f"POST {REGISTER} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{extra}\r\n"
    ).encode()
    answer = await _raw(base_url, head)
    status, _, rest = answer.partition(b"\r\n")
    assert status.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b"100 (Continue)" not in answer
    body = rest.partition(b"\r\n\r\n")[2]
    assert orjson.loads(body)["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/xml",
        "application/x-www-form-urlencoded",
        "application/json; charset=latin-1",
        "application/jsonx",
        "multipart/form-data",
    ],
)
async def test_bodies_that_are_not_declared_json_get_415(
    base_url: str, content_type: str | None
) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        r = await client.post(REGISTER, content=_registration(), headers=headers)
    assert r.status_code == 415, r.text
    assert r.json()["error"]["code"] == "unsupported_media_type"


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "Application/JSON;charset=UTF-8"],
)
async def test_json_bodies_with_or_without_charset_are_read(
    base_url: str, content_type: str
) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        r = await client.post(
            REGISTER, content=_registration(), headers={"Content-Type": content_type}
        )
        assert r.status_code == 201, r.text
        # No body at all needs no Content-Type.
        token = r.json()["access_token"]
        out = await client.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"})
        assert out.status_code == 204, out.text


def _openapi_ops(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for route, ops in doc["paths"].items():
        for method, op in ops.items():
            yield route, method, op


async def test_the_openapi_document_says_bodies_are_json_with_413_and_415(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        doc = (await client.get("/openapi.json")).json()
    with_bodies = [(r, m, op) for r, m, op in _openapi_ops(doc) if "requestBody" in op]
    assert with_bodies
    for route, method, op in with_bodies:
        assert list(op["requestBody"]["content"]) == ["application/json"], (route, method)
        assert {"413", "415"} <= set(op["responses"]), (route, method)
