"""Bad input gets its documented error or close code, nothing is stored, and the server stays
healthy for everyone else."""

from __future__ import annotations

import asyncio
import time

import pytest
import websockets
from joserfc import jwt
from joserfc.jwk import OctKey

from chat.config import embedded_secret
from tests.support.clients import Ws
from tests.support.fixtures import Server, ServerFactory, with_limits


async def _dm(server: Server) -> tuple[object, object, str]:
    alice, bob = await server.api.register(), await server.api.register()
    return alice, bob, await server.api.dm(alice, bob)


async def _still_healthy(server: Server) -> None:
    alice, bob, cid = await _dm(server)
    wa, wb = await server.ws(alice), await server.ws(bob)  # type: ignore[arg-type]
    await wa.request({"type": "send", "conversation_id": cid, "client_id": "ok", "body": "ok"})
    await wb.wait(lambda f: f.get("client_id") == "ok")
    await wa.close()
    await wb.close()


async def test_malformed_json_and_unknown_type_get_error_frames(server: Server) -> None:
    alice, _bob, cid = await _dm(server)
    ws = await server.ws(alice)  # type: ignore[arg-type]
    await ws.conn.send("{not json")
    err = await ws.wait(lambda f: f.get("type") == "error")
    assert err["code"] == "bad_json"
    unknown = await ws.request({"type": "teleport"})
    assert unknown["code"] == "unknown_type"
    not_object = await ws.conn.send("[1,2]")
    assert not_object is None
    await ws.wait(lambda f: f.get("code") == "bad_json" and f is not err)
    # The socket is still usable after errors.
    ack = await ws.request(
        {"type": "send", "conversation_id": cid, "client_id": "c", "body": "fine"}
    )
    assert ack["type"] == "ack"
    await ws.close()


async def test_frame_over_limit_closes_1009_and_stores_nothing(server: Server) -> None:
    alice, bob, cid = await _dm(server)
    ws = await server.ws(alice)  # type: ignore[arg-type]
    huge = "x" * (server.settings.limits.max_frame_bytes + 10)
    await ws.send({"type": "send", "conversation_id": cid, "client_id": "big", "body": huge})
    assert await ws.wait_closed() == 1009
    assert await server.api.history(bob, cid) == []  # type: ignore[arg-type]
    await _still_healthy(server)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("", "body_empty"),
        ("   \n ", "body_empty"),
        ("y" * 4001, "body_too_long"),
        (42, "invalid_request"),
    ],
)
async def test_empty_or_oversize_body_rejected(server: Server, body: object, code: str) -> None:
    alice, bob, cid = await _dm(server)
    ws = await server.ws(alice)  # type: ignore[arg-type]
    err = await ws.request({"type": "send", "conversation_id": cid, "client_id": "b", "body": body})
    assert err["type"] == "error" and err["code"] == code
    r = await server.api.http.post(
        f"/api/v1/conversations/{cid}/messages",
        headers=alice.auth,
        json={"client_id": "h", "body": body},
    )  # type: ignore[attr-defined]
    assert r.status_code in (400, 413) and r.json()["error"]["code"] == code
    assert await server.api.history(bob, cid) == []  # type: ignore[arg-type]
    await ws.close()


async def test_not_a_member_cannot_send_resume_or_read(server: Server) -> None:
    _alice, _bob, cid = await _dm(server)
    eve = await server.api.register()
    ws = await server.ws(eve)
    for frame in (
        {"type": "send", "conversation_id": cid, "client_id": "e", "body": "hi"},
        {"type": "read", "conversation_id": cid, "seq": 1},
        {"type": "typing", "conversation_id": cid},
        {"type": "resume", "conversations": {cid: 0}},
    ):
        err = await ws.request(frame)
        assert err["type"] == "error" and err["code"] == "not_member", frame
    r = await server.api.http.get(f"/api/v1/conversations/{cid}/messages", headers=eve.auth)
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_member"
    r = await server.api.http.post(
        f"/api/v1/conversations/{cid}/messages",
        headers=eve.auth,
        json={"client_id": "e", "body": "hi"},
    )
    assert r.status_code == 403
    assert await server.api.history(_alice, cid) == []  # type: ignore[arg-type]
    await ws.close()


def _token(server: Server, **claims: object) -> str:
    secret = embedded_secret(server.settings.data_dir)
    now = int(time.time())
    base = {
        "iss": "chatcluster",
        "aud": "chatcluster-clients",
        "sub": "u_x",
        "sid": "s",
        "iat": now,
        "exp": now + 60,
    }
    base.update(claims)
    return jwt.encode({"alg": "HS256"}, base, OctKey.import_key(secret.encode()))


async def test_forged_expired_and_wrong_audience_tokens(server: Server) -> None:
    alice = await server.api.register()
    claims = {"sub": alice.id}
    header, payload, _sig = alice.access.split(".")
    forged = f"{header}.{payload}.{'A' * 43}"
    me = await server.api.http.get("/api/v1/me", headers=alice.auth)
    sid = me.status_code == 200 and _claims_sid(alice.access)
    cases = {
        "forged": (forged, "token_invalid"),
        "expired": (_token(server, **claims, sid=sid, exp=int(time.time()) - 5), "token_expired"),
        "audience": (_token(server, **claims, sid=sid, aud="someone-else"), "token_invalid"),
        "issuer": (_token(server, **claims, sid=sid, iss="evil"), "token_invalid"),
        "alg-none": (_none_token(alice.id, sid), "token_invalid"),
    }
    for name, (token, code) in cases.items():
        r = await server.api.http.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, name
        assert r.json()["error"]["code"] == code, name
        ws = await Ws.connect(server.ws_url, server.origin)
        err = await ws.request({"type": "auth", "token": token})
        assert err["type"] == "error" and err["code"] == code, name
        assert await ws.wait_closed() == 4401, name
    r = await server.api.http.get("/api/v1/me")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"


def _claims_sid(token: str) -> str:
    import base64
    import json

    payload = token.split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(payload + "==="))["sid"])


def _none_token(sub: str, sid: object) -> str:
    import base64
    import json

    def b64(d: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

    now = int(time.time())
    return (
        b64({"alg": "none", "typ": "JWT"})
        + "."
        + b64(
            {
                "iss": "chatcluster",
                "aud": "chatcluster-clients",
                "sub": sub,
                "sid": sid,
                "iat": now,
                "exp": now + 60,
            }
        )
        + "."
    )


async def test_no_auth_frame_in_time_closes_4408(make_server: ServerFactory) -> None:
    server = await make_server(with_limits(auth_timeout_s=0.5))
    ws = await Ws.connect(server.ws_url, server.origin)
    assert await ws.wait_closed(5) == 4408


async def test_first_frame_not_auth_closes_4400(server: Server) -> None:
    ws = await Ws.connect(server.ws_url, server.origin)
    await ws.send({"type": "send", "conversation_id": "c", "client_id": "x", "body": "x"})
    assert await ws.wait_closed() == 4400


async def test_wrong_origin_is_refused_at_handshake(server: Server) -> None:
    with pytest.raises(websockets.InvalidStatus) as info:
        await Ws.connect(server.ws_url, "http://evil.example")
    assert info.value.response.status_code == 403
    with pytest.raises(websockets.InvalidStatus):
        await Ws.connect(server.ws_url, server.origin + ".evil.example")


async def test_too_many_sends_are_rate_limited(make_server: ServerFactory) -> None:
    server = await make_server(with_limits(send_burst=3, send_rate_per_s=0.5))
    alice, bob, cid = await _dm(server)
    ws = await server.ws(alice)  # type: ignore[arg-type]
    results = [
        await ws.request(
            {"type": "send", "conversation_id": cid, "client_id": f"r{i}", "body": "spam"}
        )
        for i in range(5)
    ]
    assert [r["type"] for r in results] == ["ack", "ack", "ack", "error", "error"]
    assert results[3]["code"] == "rate_limited" and results[3]["details"]["retry_after_ms"] > 0
    assert len(await server.api.history(bob, cid)) == 3  # type: ignore[arg-type]
    r = await server.api.http.post(
        f"/api/v1/conversations/{cid}/messages",
        headers=alice.auth,  # type: ignore[attr-defined]
        json={"client_id": "h", "body": "spam"},
    )
    assert r.status_code == 429 and r.headers["Retry-After"]
    await ws.close()


async def test_too_many_connections_close_4429(make_server: ServerFactory) -> None:
    server = await make_server(with_limits(max_connections_per_user=2))
    alice = await server.api.register()
    ok = [await server.ws(alice), await server.ws(alice)]
    third = await Ws.connect(server.ws_url, server.origin)
    err = await third.request({"type": "auth", "token": alice.access})
    assert err["code"] == "too_many_connections"
    assert await third.wait_closed() == 4429
    await ok[0].close()
    # A slot freed: a new connection is accepted again (bounded poll for the cleanup).
    for _ in range(50):
        again = await Ws.connect(server.ws_url, server.origin)
        reply = await again.request({"type": "auth", "token": alice.access})
        if reply["type"] == "ready":
            await again.close()
            break
        await again.wait_closed()
        await asyncio.sleep(0.02)
    else:
        pytest.fail("connection slot never freed")
    await ok[1].close()


async def test_slow_consumer_is_disconnected(make_server: ServerFactory) -> None:
    server = await make_server(
        with_limits(outbound_queue_frames=8, send_burst=10_000, send_rate_per_s=10_000)
    )
    alice, bob, cid = await _dm(server)
    reader = await server.ws(bob)  # type: ignore[arg-type]
    # Stop reading: the client's buffers and then the kernel's fill up.
    reader._reader.cancel()  # type: ignore[union-attr]
    writer = await server.ws(alice)  # type: ignore[arg-type]
    body = "€" * 3900  # ~12 KB per frame: kernel and client buffers fill within a few hundred
    handler = next(
        h
        for h in server.rt.gateway.sockets  # type: ignore[attr-defined]
        if h.principal.user.id == bob.id
    )  # type: ignore[attr-defined]
    for i in range(3000):
        await writer.send(
            {"type": "send", "conversation_id": cid, "client_id": f"s{i}", "body": body}
        )
        if handler.closing:
            break
    else:
        pytest.fail("slow consumer was never disconnected")
    closes = server.rt.metrics.registry.get_sample_value("chat_ws_closes_total", {"code": "4008"})
    assert closes == 1
    await writer.close()
    await reader.conn.close()


async def test_sql_and_html_looking_text_is_stored_verbatim(server: Server) -> None:
    alice, bob, cid = await _dm(server)
    nasty = [
        "'); DROP TABLE messages; --",
        "<img src=x onerror=alert(1)>",
        "%_\\'\"",
        "Robert'); DELETE FROM users WHERE ('1'='1",
    ]
    for text in nasty:
        await server.api.send(alice, cid, text)  # type: ignore[arg-type]
    bodies = [m["body"] for m in await server.api.history(bob, cid)]  # type: ignore[arg-type]
    assert bodies == nasty
    r = await server.api.http.get(
        "/api/v1/search",
        headers=bob.auth,  # type: ignore[attr-defined]
        params={"q": "%_"},
    )
    assert [m["body"] for m in r.json()["messages"]] == ["%_\\'\""]
    await _still_healthy(server)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/conversations/c_nope",
        "/api/v1/users/u_nope",
        "/api/v1/conversations/c_nope/messages",
    ],
)
async def test_unknown_ids_in_http(server: Server, path: str) -> None:
    alice = await server.api.register()
    r = await server.api.http.get(path, headers=alice.auth)
    assert r.status_code in (403, 404)
    assert r.json()["error"]["code"] in ("conversation_not_found", "user_not_found", "not_member")
    r = await server.api.http.post(
        "/api/v1/conversations", headers=alice.auth, json={"kind": "direct", "user_id": "u_nope"}
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "user_not_found"


async def test_malformed_http_bodies(server: Server) -> None:
    alice = await server.api.register()
    for raw in (b"{nope", b"[]", b'"str"'):
        r = await server.api.http.post(
            "/api/v1/conversations",
            headers={**alice.auth, "Content-Type": "application/json"},
            content=raw,
        )
        assert r.status_code == 400 and r.json()["error"]["code"] == "bad_json"
    r = await server.api.http.post(
        "/api/v1/conversations", headers=alice.auth, json={"kind": "party"}
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request"
    r = await server.api.http.get(
        "/api/v1/conversations/x/messages", headers=alice.auth, params={"limit": "abc"}
    )
    assert r.status_code == 400


@pytest.mark.parametrize("client_id", ["abc\n", "a" * 64 + "\n"])
async def test_client_id_with_a_final_newline_is_refused(server: Server, client_id: str) -> None:
    alice, bob, cid = await _dm(server)
    ws = await server.ws(alice)  # type: ignore[arg-type]
    err = await ws.request(
        {"type": "send", "conversation_id": cid, "client_id": client_id, "body": "x"}
    )
    assert err["type"] == "error" and err["code"] == "invalid_client_id"
    assert await server.api.history(bob, cid) == []  # type: ignore[arg-type]
    await ws.close()


@pytest.mark.parametrize("username", ["alice\n", "\u212aelvin"])
async def test_registration_refuses_a_final_newline_or_a_look_alike(
    server: Server, username: str
) -> None:
    r = await server.api.http.post(
        "/api/v1/auth/register", json={"username": username, "password": "correct horse"}
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_username"


async def test_auth_resuming_a_foreign_conversation_is_ready_then_not_member(
    server: Server,
) -> None:
    """No error before `ready` without a close: the socket becomes ready, then hears
    `not_member` for the conversation it may not resume, and stays open."""
    _alice, _bob, cid = await _dm(server)
    eve = await server.api.register()
    mine = await server.api.dm(eve, _alice)  # type: ignore[arg-type]
    ws = await Ws.connect(server.ws_url, server.origin)
    ready = await ws.request({"type": "auth", "token": eve.access, "resume": {cid: 0, mine: 0}})
    assert ready["type"] == "ready", ready
    err = await ws.wait(lambda f: f.get("type") == "error")
    assert err["code"] == "not_member" and err["details"]["conversation_id"] == cid
    kinds = [f["type"] for f in ws.frames]
    assert kinds.index("ready") < kinds.index("error")
    pong = await ws.request({"type": "ping"})
    assert pong["type"] == "pong" and not ws.closed.is_set()
    await ws.close()


async def test_allowed_origins_are_the_whole_rule(make_server: ServerFactory) -> None:
    """With CHAT_ALLOWED_ORIGINS set, neither Origin == Host nor Sec-Fetch-Site: same-origin
    admits an Origin outside the list (the DNS-rebinding shape); a listed Origin is admitted."""
    server = await make_server(allowed_origins=("https://chat.example",))
    same_host = f"http://127.0.0.1:{server.settings.port}"
    with pytest.raises(websockets.InvalidStatus) as info:
        await Ws.connect(server.ws_url, same_host)
    assert info.value.response.status_code == 403
    with pytest.raises(websockets.InvalidStatus) as info:
        await Ws.connect(
            server.ws_url,
            "https://rebound.example",
            additional_headers={"Sec-Fetch-Site": "same-origin"},
        )
    assert info.value.response.status_code == 403
    alice = await server.api.register()
    ok = await Ws.connect(server.ws_url, "https://chat.example")
    assert (await ok.auth(alice.access))["type"] == "ready"
    await ok.close()
