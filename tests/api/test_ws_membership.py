"""Embedded mode (one process: API, gateway, in-process bus) with the membership cache on: a
member's repeated WebSocket sends ask the store once; a removal through the API is refused on
the member's open socket as soon as the DELETE has returned (the in-process bus delivers the
`left` frame inside the publish), and so is every later send, also over HTTP; re-added, the
member can send again at once ("not a member" is never remembered)."""

from __future__ import annotations

from typing import Any

from tests.support.clients import unique
from tests.support.fixtures import Server


def member_queries(server: Server) -> float:
    labels = {"port": "conversations", "method": "is_member"}
    value = server.rt.metrics.registry.get_sample_value(
        "chat_store_call_duration_seconds_count", labels
    )
    return value or 0.0


async def test_removed_member_is_refused_at_once_and_readded_member_admitted(
    server: Server,
) -> None:
    owner, bob = await server.api.register(), await server.api.register()
    cid = await server.api.group(owner, bob, title=unique("g"))
    wb = await server.ws(bob)

    def send(client_id: str) -> dict[str, Any]:
        return {"type": "send", "conversation_id": cid, "client_id": client_id, "body": "x"}

    assert (await wb.request(send("b0")))["type"] == "ack"
    before = member_queries(server)
    for i in range(1, 6):
        assert (await wb.request(send(f"b{i}")))["type"] == "ack"
    assert member_queries(server) == before

    r = await server.api.http.delete(
        f"/api/v1/conversations/{cid}/members/{bob.id}", headers=owner.auth
    )
    assert r.status_code == 204, r.text
    refused = await wb.request(send("after"))
    assert refused["type"] == "error" and refused["code"] == "not_member", refused
    over_http = await server.api.http.post(
        f"/api/v1/conversations/{cid}/messages",
        headers=bob.auth,
        json={"client_id": unique("m"), "body": "x"},
    )
    assert over_http.status_code == 403 and over_http.json()["error"]["code"] == "not_member"

    r = await server.api.http.post(
        f"/api/v1/conversations/{cid}/members", headers=owner.auth, json={"user_id": bob.id}
    )
    assert r.status_code == 200, r.text
    assert (await wb.request(send("back")))["type"] == "ack"
    await wb.close()
