"""Path and query parameters: numbers are ASCII digits in range, and arbitrary strings in every
parameter of every documented route get a documented status with a stable error `code` — never
a 500 or a traceback (issue 10, item 10), on the embedded and the cluster backend."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chat.api.openapi import document
from chat.config import Backend
from tests.servers import PostgresServer, RedisServer
from tests.support.clients import Account
from tests.support.fixtures import Server, start_server, with_limits

# Hypothesis fails an example when the global `random` state changed while it drew data. In
# the cluster server the in-process Dramatiq Redis broker calls `random.randint` on its own
# threads (dramatiq/brokers/redis.py, maintenance chance) at any moment: a false alarm about
# this test's strategies, which never use `random`.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies"
    ":hypothesis.errors.HypothesisDeprecationWarning"
)


@dataclass(frozen=True)
class World:
    alice: Account
    bob: Account
    cid: str


async def _world(server: Server) -> World:
    alice, bob = await server.api.register(), await server.api.register()
    cid = await server.api.group(alice, bob)
    await server.api.send(alice, cid, "hello one")
    return World(alice, bob, cid)


@pytest.fixture(scope="module")
async def world(server: Server) -> World:
    return await _world(server)


@pytest.fixture(scope="module")
async def cluster_server(
    tmp_path_factory: pytest.TempPathFactory,
    redis_server: RedisServer,
    postgres_server: PostgresServer,
    mongodb_uri: str,
) -> AsyncIterator[Server]:
    """One cluster-backed server for the module, on a schema and Redis database of its own."""
    from chat.stores.cluster.migrations import migrate_postgres

    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(postgres_server.dsn)
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        await admin.close()
    dsn = f"{postgres_server.dsn}?search_path={schema}"
    await migrate_postgres(dsn)
    db = 62  # the per-test databases cycle through 1..63, flushing each before use
    with redis_server.client(db) as r:
        r.flushdb()
    srv = await start_server(
        tmp_path_factory.mktemp("cluster-params"),
        with_limits(send_burst=10_000, send_rate_per_s=10_000),
        backend=Backend.CLUSTER,
        redis_url=f"redis://127.0.0.1:{redis_server.port}/{db}",
        postgres_dsn=dsn,
        mongodb_uri=mongodb_uri,
        mongodb_database=f"t_{uuid.uuid4().hex[:16]}",
        jwt_secret="test-secret-" + "x" * 32,
    )
    yield srv
    await srv.stop()


@pytest.fixture(scope="module", params=["embedded", "cluster"])
def backend_server(request: pytest.FixtureRequest) -> Server:
    """Synchronous, so it may pull the (async) server fixtures by name."""
    srv: Server = request.getfixturevalue(
        "server" if request.param == "embedded" else "cluster_server"
    )
    return srv


@pytest.fixture(scope="module")
async def backend(backend_server: Server) -> tuple[Server, World]:
    return backend_server, await _world(backend_server)


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        ("GET", "/messages", {"after": "9223372036854775808"}),
        ("GET", "/messages", {"before": str(10**30)}),
        ("GET", "/messages", {"limit": "\u0661"}),
        ("GET", "/messages", {"after": " 1 "}),
        ("GET", "/messages", {"after": "+1"}),
        ("GET", "/messages", {"after": "1_0"}),
        ("GET", "/messages", {"after": "-1"}),
        ("PATCH", f"/messages/{10**30}", {}),
        ("PATCH", "/messages/9223372036854775808", {}),
        ("PATCH", "/messages/%D9%A1", {}),  # U+0661 ARABIC-INDIC DIGIT ONE
        ("PATCH", "/messages/%201%20", {}),
        ("PATCH", "/messages/+1", {}),
        ("PATCH", "/messages/1_0", {}),
        ("DELETE", "/messages/%D9%A1", {}),
    ],
)
async def test_numbers_are_ascii_digits_in_range(
    server: Server, world: World, method: str, path: str, params: dict[str, str]
) -> None:
    r = await server.api.http.request(
        method,
        f"/api/v1/conversations/{world.cid}{path}",
        headers=world.alice.auth,
        params=params,
        json={"client_id": "e1", "body": "edited"} if method == "PATCH" else None,
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_request"
    history = await server.api.history(world.alice, world.cid)
    assert [(m["seq"], m["body"], m["deleted"]) for m in history] == [(1, "hello one", False)]


def _cases() -> list[tuple[str, str, str, str]]:
    """(route, method, parameter name, where) for every parameter the OpenAPI document lists."""
    out = []
    for route, ops in document()["paths"].items():
        for method, op in ops.items():
            for param in op.get("parameters", []):
                out.append((route, method.upper(), param["name"], param["in"]))
    return out


def _enc(value: str) -> str:
    # Percent-encode everything but letters and digits, so '.', '..' and '/' stay inside the
    # one parameter instead of being normalised by the client.
    return quote(value.encode(), safe="").replace(".", "%2E").replace("-", "%2D")


# Valid values for the parameters not under test, so the one under test decides the answer.
def _defaults(world: World) -> dict[str, str]:
    return {"conversation_id": world.cid, "user_id": world.bob.id, "seq": "1", "q": "hello"}


def test_the_document_lists_parameters() -> None:
    names = {(route, name) for route, _m, name, _w in _cases()}
    assert ("/api/v1/conversations/{conversation_id}/messages", "after") in names
    assert ("/api/v1/conversations/{conversation_id}/messages/{seq}", "seq") in names


@pytest.mark.parametrize(("route", "method", "name", "where"), _cases())
async def test_arbitrary_strings_in_every_parameter(
    backend: tuple[Server, World],
    caplog: pytest.LogCaptureFixture,
    route: str,
    method: str,
    name: str,
    where: str,
) -> None:
    server, world = backend
    op = document()["paths"][route][method.lower()]
    documented = {int(code) for code in op["responses"]}
    defaults = _defaults(world)
    path_names = [p["name"] for p in op.get("parameters", []) if p["in"] == "path"]
    query_names = {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}
    body = b"{}" if method in ("POST", "PATCH") else None
    headers = {**world.alice.auth, "Content-Type": "application/json"}

    def url(value: str) -> str:
        path = route
        for p in path_names:
            path = path.replace("{" + p + "}", _enc(value if p == name else defaults[p]))
        query = {k: defaults[k] for k in query_names & {"q"} if k != name}
        if where == "query":
            query[name] = value
        qs = "&".join(f"{_enc(k)}={_enc(v)}" for k, v in query.items())
        return f"{server.base_url}{path}" + (f"?{qs}" if qs else "")

    # Path segments are never empty (an empty one is another route); queries may be.
    strategy = st.text(min_size=1 if where == "path" else 0, max_size=80) | st.sampled_from(
        ["0", "1", "-1", "\u0661", " 1 ", "+1", "1_0", str(2**63), str(10**30), "..", "%00", "\x00"]
    )

    @settings(
        max_examples=25 if server.settings.backend is Backend.EMBEDDED else 10,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(strategy)
    def check(value: str) -> None:
        r = client.request(method, url(value), headers=headers, content=body)
        assert r.status_code < 500, (value, r.status_code, r.text)
        assert r.status_code in documented or 200 <= r.status_code < 300, (value, r.text)
        if r.status_code >= 400:
            error: Any = r.json()["error"]
            assert isinstance(error["code"], str) and error["code"], r.text

    caplog.set_level(logging.WARNING)
    with httpx.Client(timeout=10, follow_redirects=False) as client:
        await asyncio.to_thread(check)
    tracebacks = [rec for rec in caplog.records if rec.exc_info or rec.levelno >= logging.ERROR]
    assert not tracebacks, [rec.getMessage() for rec in tracebacks]
