"""Sign in with an OpenID Provider, end to end against a real, certified provider
(panva/oidc-provider on Node.js, installed by scripts/setup.d/25-oidc-provider.sh): the
authorization code flow with PKCE, ID-token checks, account linking, and refusals."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from tests.support.fixtures import Server, ServerFactory
from tests.support.oidc_provider import Provider


def _fragment(location: str) -> dict[str, str]:
    assert location.startswith("/#"), location
    return {k: v[0] for k, v in parse_qs(location[2:]).items()}


async def _relying_party(make_server: ServerFactory, provider: Provider, port: int) -> Server:
    return await make_server(port=port, **provider.relying_party_settings())


async def test_sign_in_with_provider_creates_and_reuses_linked_user(
    provider_and_port: tuple[Provider, int], make_server: ServerFactory
) -> None:
    provider, port = provider_and_port
    server = await _relying_party(make_server, provider, port)
    info = (await server.api.http.get("/api/v1/auth/oidc")).json()
    assert info == {"enabled": True, "display_name": "Test IdP"}

    async def sign_in(login: str) -> dict[str, str]:
        start = await server.api.http.get("/api/v1/auth/oidc/login")
        assert start.status_code == 302
        authorize = start.headers["location"]
        query = parse_qs(urlsplit(authorize).query)
        assert query["code_challenge_method"] == ["S256"]
        assert "nonce" in query
        back = provider.sign_in(authorize, login)
        done = await server.api.http.get(back)
        assert done.status_code == 302
        return _fragment(done.headers["location"])

    first = await sign_in("Carol.Oidc")
    me = await server.api.http.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {first['access_token']}"}
    )
    assert me.status_code == 200
    user = me.json()
    assert user["username"] == "carol.oidc"
    assert user["display_name"] == "Person Carol.Oidc"
    again = await sign_in("Carol.Oidc")
    me2 = await server.api.http.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {again['access_token']}"}
    )
    assert me2.json()["id"] == user["id"]
    refreshed = await server.api.http.post(
        "/api/v1/auth/refresh", json={"refresh_token": again["refresh_token"]}
    )
    assert refreshed.status_code == 200
    # A linked user has no password: password login cannot reach the account.
    pw = await server.api.http.post(
        "/api/v1/auth/login", json={"username": "carol.oidc", "password": "!external"}
    )
    assert pw.status_code == 401


async def test_callback_refuses_forged_state_and_missing_cookie(
    provider_and_port: tuple[Provider, int], make_server: ServerFactory
) -> None:
    provider, port = provider_and_port
    server = await _relying_party(make_server, provider, port)
    start = await server.api.http.get("/api/v1/auth/oidc/login")
    back = provider.sign_in(start.headers["location"], "mallory")
    forged = back.replace("state=", "state=x")
    done = await server.api.http.get(forged)
    assert _fragment(done.headers["location"]) == {"login_error": "oidc_state"}
    # The cookie was consumed: replaying the genuine callback fails too.
    replay = await server.api.http.get(back)
    assert _fragment(replay.headers["location"]) == {"login_error": "oidc_state"}
    denied = await server.api.http.get(
        "/api/v1/auth/oidc/callback", params={"error": "access_denied"}
    )
    assert _fragment(denied.headers["location"]) == {"login_error": "oidc_denied"}


async def test_oidc_disabled_by_default(make_server: ServerFactory) -> None:
    server = await make_server()
    assert (await server.api.http.get("/api/v1/auth/oidc")).json()["enabled"] is False
    r = await server.api.http.get("/api/v1/auth/oidc/login")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "oidc_disabled"
