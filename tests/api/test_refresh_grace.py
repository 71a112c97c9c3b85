"""Over HTTP, on both backends: a refresh whose answer was lost, retried with the only token the
client has, gets the same new refresh token and the user stays signed in; reuse after the grace
window, or of an older token, still revokes the session (issue 10 item 14, issue 12 item 3)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from chat.config import Backend
from tests.support.fixtures import Server, ServerFactory, with_limits


@pytest.fixture(params=[Backend.EMBEDDED, Backend.CLUSTER])
def start(request: pytest.FixtureRequest, make_server: ServerFactory) -> Any:
    overrides: dict[str, Any] = {}
    if request.param is Backend.CLUSTER:
        cluster = request.getfixturevalue("cluster_settings")
        overrides = {
            f: getattr(cluster, f)
            for f in (
                "backend",
                "redis_url",
                "postgres_dsn",
                "mongodb_uri",
                "mongodb_database",
                "jwt_secret",
            )
        }

    async def make(**limits: Any) -> Server:
        return await make_server(with_limits(**limits), **overrides)

    return make


async def _refresh(server: Server, token: str) -> httpx.Response:
    return await server.api.http.post("/api/v1/auth/refresh", json={"refresh_token": token})


async def test_the_answer_was_lost_the_client_retries_and_stays_signed_in(start: Any) -> None:
    server = await start()
    alice = await server.api.register()
    ws = await server.ws(alice)
    lost = await _refresh(server, alice.refresh)  # the client never sees this answer
    assert lost.status_code == 200, lost.text
    retry = await _refresh(server, alice.refresh)
    assert retry.status_code == 200, retry.text
    assert retry.json()["refresh_token"] == lost.json()["refresh_token"]
    access = retry.json()["access_token"]
    me = await server.api.http.get("/api/v1/me", headers={"Authorization": f"Bearer {access}"})
    assert me.status_code == 200
    # Not logged out: the socket stays open and the new token rotates on.
    pong = await ws.request({"type": "ping"})
    assert pong["type"] == "pong"
    nxt = await _refresh(server, retry.json()["refresh_token"])
    assert nxt.status_code == 200
    await ws.close()


async def test_two_tabs_rotating_the_same_token_at_once_both_stay_signed_in(start: Any) -> None:
    server = await start()
    alice = await server.api.register()
    a, b = await asyncio.gather(_refresh(server, alice.refresh), _refresh(server, alice.refresh))
    assert (a.status_code, b.status_code) == (200, 200), (a.text, b.text)
    assert a.json()["refresh_token"] == b.json()["refresh_token"]


async def test_reuse_after_the_window_revokes_the_session(start: Any) -> None:
    server = await start(refresh_grace_s=0.3)
    alice = await server.api.register()
    ws = await server.ws(alice)
    rotated = await _refresh(server, alice.refresh)
    assert rotated.status_code == 200
    await asyncio.sleep(0.4)  # the window itself is under test: let it pass
    late = await _refresh(server, alice.refresh)
    assert late.status_code == 401 and late.json()["error"]["code"] == "refresh_reused"
    assert await ws.wait_closed() == 4409
    new = await _refresh(server, rotated.json()["refresh_token"])
    assert new.status_code == 401


async def test_reuse_of_an_older_token_within_the_window_revokes_the_session(start: Any) -> None:
    server = await start()
    alice = await server.api.register()
    first = await _refresh(server, alice.refresh)
    second = await _refresh(server, first.json()["refresh_token"])
    assert second.status_code == 200
    stolen = await _refresh(server, alice.refresh)
    assert stolen.status_code == 401 and stolen.json()["error"]["code"] == "refresh_reused"
    gone = await _refresh(server, second.json()["refresh_token"])
    assert gone.status_code == 401
