"""People search over HTTP: `GET /api/v1/users?q=` (prefix of username or display-name word,
bounded, auth required, documented), next to the exact `?username=` lookup it extends."""

from __future__ import annotations

from typing import Any

from chat.domain.accounts import USER_SEARCH_DEFAULT_LIMIT, USER_SEARCH_MAX_LIMIT
from tests.support.clients import Account, unique
from tests.support.fixtures import Server


async def _register(server: Server, username: str, display_name: str) -> Account:
    r = await server.api.http.post(
        "/api/v1/auth/register",
        json={"username": username, "password": "hunter2hunter2", "display_name": display_name},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    return Account(
        body["user"]["id"], username, "hunter2hunter2", body["access_token"], body["refresh_token"]
    )


async def _search(server: Server, who: Account, **params: Any) -> Any:
    return await server.api.http.get("/api/v1/users", params=params, headers=who.auth)


async def test_search_by_prefix_any_case_usernames_first(server: Server) -> None:
    tag = unique("p")
    carla = await _register(server, f"carla{tag}", "Carla")
    other = await _register(server, f"z{tag}", f"Márcia Carla{tag}")
    r = await _search(server, carla, q=f"CARLA{tag}")
    assert r.status_code == 200, r.text
    users = r.json()["users"]
    assert [u["id"] for u in users] == [carla.id, other.id]
    assert users[0] == {
        "id": carla.id,
        "username": f"carla{tag}",
        "display_name": "Carla",
        "created_at": users[0]["created_at"],
        "disabled": False,
        "is_admin": False,
    }
    accent = await _search(server, carla, q=f"MÁRCIA CARLA{tag}")
    assert [u["id"] for u in accent.json()["users"]] == [other.id]
    # The exact lookup still answers a single user.
    exact = await server.api.http.get(
        "/api/v1/users", params={"username": f"carla{tag}"}, headers=carla.auth
    )
    assert exact.status_code == 200 and exact.json()["id"] == carla.id


async def test_search_is_bounded(server: Server) -> None:
    tag = unique("b")
    people = [
        await _register(server, f"{tag}n{i:02d}", "Same Name")
        for i in range(USER_SEARCH_MAX_LIMIT + 1)
    ]
    r = await _search(server, people[0], q=tag)
    assert len(r.json()["users"]) == USER_SEARCH_DEFAULT_LIMIT
    r = await _search(server, people[0], q=tag, limit=str(USER_SEARCH_MAX_LIMIT))
    found = r.json()["users"]
    assert len(found) == USER_SEARCH_MAX_LIMIT
    assert [u["username"] for u in found] == sorted(u["username"] for u in found)
    too_many = await _search(server, people[0], q=tag, limit=str(USER_SEARCH_MAX_LIMIT + 1))
    assert too_many.status_code == 400
    assert too_many.json()["error"]["code"] == "invalid_request"


async def test_search_needs_auth_and_a_sane_query(server: Server) -> None:
    me = await _register(server, unique("q"), "Q")
    anonymous = await server.api.http.get("/api/v1/users", params={"q": "a"})
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "unauthenticated"
    bad_queries: list[dict[str, str]] = [
        {"q": ""},
        {"q": "   "},
        {"q": "x" * 65},
        {"q": "a\x7fb"},  # (Tornado itself drops most C0 controls from query values)
        {"q": "a\nb"},
        {"q": "a", "limit": "0"},
        {"q": "a", "limit": "many"},
    ]
    for bad in bad_queries:
        r = await _search(server, me, **bad)
        assert r.status_code == 400, bad
        assert r.json()["error"]["code"] == "invalid_request", bad
    nothing = await _search(server, me, q="%")
    assert nothing.status_code == 200 and nothing.json() == {"users": []}


async def test_search_is_in_the_openapi_document(server: Server) -> None:
    doc = (await server.api.http.get("/openapi.json")).json()
    get = doc["paths"]["/api/v1/users"]["get"]
    assert {p["name"] for p in get["parameters"]} == {"q", "limit", "username"}
    assert "security" not in get  # auth required (the document's default)
    schema = get["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["oneOf"][0]["properties"]["users"]["items"] == {
        "$ref": "#/components/schemas/User"
    }
