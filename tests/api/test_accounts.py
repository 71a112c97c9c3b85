"""Accounts over HTTP: register, login, refresh rotation and reuse detection, logout closing
sockets, admin disable."""

from __future__ import annotations

from argon2 import PasswordHasher as Argon2

from chat.domain.passwords import PasswordHasher
from tests.support.clients import Ws, unique
from tests.support.fixtures import Server


async def test_register_login_me(server: Server) -> None:
    name = unique("Alice")
    r = await server.api.http.post(
        "/api/v1/auth/register",
        json={"username": name, "password": "hunter2hunter2", "display_name": "Alice A."},
    )
    assert r.status_code == 201
    body = r.json()
    assert body["user"]["username"] == name.lower() and body["token_type"] == "Bearer"
    dup = await server.api.http.post(
        "/api/v1/auth/register", json={"username": name, "password": "hunter2hunter2"}
    )
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "username_taken"
    bad = await server.api.http.post(
        "/api/v1/auth/login", json={"username": name, "password": "wrong-password"}
    )
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "invalid_credentials"
    ghost = await server.api.http.post(
        "/api/v1/auth/login", json={"username": "nobody-here", "password": "x" * 9}
    )
    assert ghost.status_code == 401 and ghost.json()["error"]["code"] == "invalid_credentials"
    ok = await server.api.http.post(
        "/api/v1/auth/login", json={"username": name.upper(), "password": "hunter2hunter2"}
    )
    assert ok.status_code == 200
    me = await server.api.http.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {ok.json()['access_token']}"}
    )
    assert me.json()["display_name"] == "Alice A."


async def test_invalid_registration_input(server: Server) -> None:
    for payload, code in (
        ({"username": "a", "password": "longenough"}, "invalid_username"),
        ({"username": "ok-name", "password": "short"}, "invalid_password"),
        ({"username": "bad name!", "password": "longenough"}, "invalid_username"),
    ):
        r = await server.api.http.post("/api/v1/auth/register", json=payload)
        assert r.status_code == 400 and r.json()["error"]["code"] == code


async def test_refresh_rotates_and_reuse_revokes_family(server: Server) -> None:
    acct = await server.api.register()
    r1 = await server.api.http.post("/api/v1/auth/refresh", json={"refresh_token": acct.refresh})
    assert r1.status_code == 200
    second = r1.json()["refresh_token"]
    assert second != acct.refresh
    r2 = await server.api.http.post("/api/v1/auth/refresh", json={"refresh_token": second})
    assert r2.status_code == 200
    third = r2.json()["refresh_token"]
    # A token older than the latest rotation comes back: theft (a retry of the latest rotation
    # within the grace window is not; see tests/api/test_refresh_grace.py). The whole family
    # is revoked.
    reuse = await server.api.http.post("/api/v1/auth/refresh", json={"refresh_token": acct.refresh})
    assert reuse.status_code == 401 and reuse.json()["error"]["code"] == "refresh_reused"
    after = await server.api.http.post("/api/v1/auth/refresh", json={"refresh_token": third})
    assert after.status_code == 401
    me = await server.api.http.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {r2.json()['access_token']}"}
    )
    assert me.status_code == 401 and me.json()["error"]["code"] == "session_revoked"
    junk = await server.api.http.post("/api/v1/auth/refresh", json={"refresh_token": "junk"})
    assert junk.status_code == 401


async def test_logout_revokes_and_closes_that_sessions_sockets(server: Server) -> None:
    acct = await server.api.register()
    other = await server.api.http.post(
        "/api/v1/auth/login", json={"username": acct.username, "password": acct.password}
    )
    other_token = other.json()["access_token"]
    ws = await server.ws(acct)
    ws_other = await Ws.connect(server.ws_url, server.origin)
    await ws_other.auth(other_token)
    r = await server.api.http.post("/api/v1/auth/logout", headers=acct.auth, json={})
    assert r.status_code == 204
    assert await ws.wait_closed() == 4409
    me = await server.api.http.get("/api/v1/me", headers=acct.auth)
    assert me.status_code == 401
    # The other device's session lives on until `all: true`.
    pong = await ws_other.request({"type": "ping"})
    assert pong["type"] == "pong"
    r = await server.api.http.post(
        "/api/v1/auth/logout",
        headers={"Authorization": f"Bearer {other_token}"},
        json={"all": True},
    )
    assert r.status_code == 204
    assert await ws_other.wait_closed() == 4409


async def test_admin_disables_user(server: Server) -> None:
    admin = await server.api.register("root")
    victim = await server.api.register()
    ws = await server.ws(victim)
    nope = await server.api.http.post(
        f"/api/v1/admin/users/{admin.id}/disable", headers=victim.auth
    )
    assert nope.status_code == 403 and nope.json()["error"]["code"] == "admin_only"
    r = await server.api.http.post(f"/api/v1/admin/users/{victim.id}/disable", headers=admin.auth)
    assert r.status_code == 200 and r.json()["disabled"] is True
    assert await ws.wait_closed() == 4403
    me = await server.api.http.get("/api/v1/me", headers=victim.auth)
    assert me.status_code in (401, 403)
    login = await server.api.http.post(
        "/api/v1/auth/login", json={"username": victim.username, "password": victim.password}
    )
    assert login.status_code == 403 and login.json()["error"]["code"] == "user_disabled"
    missing = await server.api.http.post(
        "/api/v1/admin/users/u_missing/disable", headers=admin.auth
    )
    assert missing.status_code == 404


def test_production_hash_uses_owasp_argon2id_parameters() -> None:
    encoded = PasswordHasher().hash("a password")
    params = Argon2().check_needs_rehash  # noqa: F841 - only to show the library in use
    assert encoded.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert PasswordHasher().verify(encoded, "a password")
    assert not PasswordHasher().verify(encoded, "another")


async def test_direct_conversation_is_one_per_pair(server: Server) -> None:
    a, b = await server.api.register(), await server.api.register()
    first = await server.api.dm(a, b)
    again = await server.api.http.post(
        "/api/v1/conversations", headers=b.auth, json={"kind": "direct", "user_id": a.id}
    )
    assert again.json()["id"] == first
    self_dm = await server.api.http.post(
        "/api/v1/conversations", headers=a.auth, json={"kind": "direct", "user_id": a.id}
    )
    assert self_dm.status_code == 400


async def test_group_ownership_rules(server: Server) -> None:
    owner, m1, outsider = (
        await server.api.register(),
        await server.api.register(),
        await server.api.register(),
    )
    cid = await server.api.group(owner, m1)
    r = await server.api.http.post(
        f"/api/v1/conversations/{cid}/members", headers=m1.auth, json={"user_id": outsider.id}
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_owner"
    r = await server.api.http.post(
        f"/api/v1/conversations/{cid}/members", headers=owner.auth, json={"user_id": m1.id}
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "already_member"
    r = await server.api.http.delete(
        f"/api/v1/conversations/{cid}/members/{owner.id}", headers=m1.auth
    )
    assert r.status_code == 403
    r = await server.api.http.delete(
        f"/api/v1/conversations/{cid}/members/{m1.id}", headers=owner.auth
    )
    assert r.status_code == 204
    conv = (await server.api.http.get(f"/api/v1/conversations/{cid}", headers=owner.auth)).json()
    assert [m["user_id"] for m in conv["members"]] == [owner.id]


async def test_history_pagination_and_search(server: Server) -> None:
    a, b = await server.api.register(), await server.api.register()
    cid = await server.api.dm(a, b)
    for i in range(1, 26):
        await server.api.send(a, cid, f"note {i}" + (" needle" if i % 10 == 0 else ""))
    newest = await server.api.history(b, cid, limit=10)
    assert [m["seq"] for m in newest] == list(range(16, 26))
    older = await server.api.history(b, cid, before=16, limit=10)
    assert [m["seq"] for m in older] == list(range(6, 16))
    after = await server.api.history(b, cid, after=20, limit=100)
    assert [m["seq"] for m in after] == list(range(21, 26))
    too_many = await server.api.http.get(
        f"/api/v1/conversations/{cid}/messages", headers=a.auth, params={"limit": 101}
    )
    assert too_many.status_code == 400
    found = await server.api.http.get("/api/v1/search", headers=b.auth, params={"q": "NEEDLE"})
    assert [m["seq"] for m in found.json()["messages"]] == [20, 10]
    stranger = await server.api.register()
    none = await server.api.http.get(
        "/api/v1/search", headers=stranger.auth, params={"q": "needle"}
    )
    assert none.json()["messages"] == []
