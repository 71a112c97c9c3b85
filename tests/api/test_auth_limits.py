"""Login and registration are rate limited per client IP and per username, before any argon2
work, on both backends: 429 `rate_limited` with `Retry-After` (issue 10, item 12)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from chat.config import Backend
from tests.support.clients import unique
from tests.support.fixtures import Server, ServerFactory, with_limits

GENEROUS = {
    "login_burst_per_ip": 1000,
    "login_burst_per_username": 1000,
    "register_burst_per_ip": 1000,
    "register_burst_per_username": 1000,
}


@pytest.fixture(params=[Backend.EMBEDDED, Backend.CLUSTER])
def start(request: pytest.FixtureRequest, make_server: ServerFactory) -> Any:
    overrides: dict[str, Any] = {}
    if request.param is Backend.CLUSTER:
        cluster = request.getfixturevalue("cluster_settings")
        overrides = {
            "backend": Backend.CLUSTER,
            "redis_url": cluster.redis_url,
            "postgres_dsn": cluster.postgres_dsn,
            "mongodb_uri": cluster.mongodb_uri,
            "mongodb_database": cluster.mongodb_database,
            "jwt_secret": cluster.jwt_secret,
        }

    async def make(**limits: Any) -> Server:
        return await make_server(with_limits(**{**GENEROUS, **limits}), **overrides)

    return make


def _assert_429(r: httpx.Response, scope: str) -> None:
    assert r.status_code == 429, r.text
    error = r.json()["error"]
    assert error["code"] == "rate_limited"
    assert error["details"]["scope"] == scope
    assert error["details"]["retry_after_ms"] > 0
    assert int(r.headers["Retry-After"]) >= error["details"]["retry_after_ms"] / 1000


async def _login(server: Server, username: str, password: str = "wrong password") -> httpx.Response:
    return await server.api.http.post(
        "/api/v1/auth/login", json={"username": username, "password": password}
    )


async def test_logins_per_ip(start: Any) -> None:
    server = await start(login_burst_per_ip=3, login_rate_per_ip_per_s=0.01)
    for _ in range(3):
        assert (await _login(server, unique())).status_code == 401
    _assert_429(await _login(server, unique()), "ip")


async def test_logins_per_username_from_any_address(start: Any) -> None:
    server = await start(login_burst_per_username=2, login_rate_per_username_per_s=0.01)
    victim = await server.api.register()
    for _ in range(2):
        assert (await _login(server, victim.username)).status_code == 401
    # Even the right password waits while the name's bucket is empty (case does not help).
    _assert_429(await _login(server, victim.username.upper(), victim.password), "username")
    other = await server.api.register()
    assert (await _login(server, other.username, other.password)).status_code == 200


async def test_registrations_per_ip(start: Any) -> None:
    server = await start(register_burst_per_ip=2, register_rate_per_ip_per_s=0.01)
    await server.api.register()
    await server.api.register()
    r = await server.api.http.post(
        "/api/v1/auth/register", json={"username": unique(), "password": "correct horse"}
    )
    _assert_429(r, "ip")


async def test_registrations_per_username(start: Any) -> None:
    server = await start(register_burst_per_username=2, register_rate_per_username_per_s=0.01)
    name = unique()
    body = {"username": name, "password": "correct horse"}
    first = await server.api.http.post("/api/v1/auth/register", json=body)
    assert first.status_code == 201
    again = await server.api.http.post("/api/v1/auth/register", json=body)
    assert again.status_code == 409 and again.json()["error"]["code"] == "username_taken"
    _assert_429(await server.api.http.post("/api/v1/auth/register", json=body), "username")


async def test_the_openapi_document_lists_429_with_retry_after(server: Server) -> None:
    doc = (await server.api.http.get("/openapi.json")).json()
    for route in ("/api/v1/auth/login", "/api/v1/auth/register"):
        assert doc["paths"][route]["post"]["responses"]["429"] == {
            "$ref": "#/components/responses/RateLimited"
        }
    assert "Retry-After" in doc["components"]["responses"]["RateLimited"]["headers"]
