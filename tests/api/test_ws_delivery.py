"""Live delivery over real WebSockets: send, ack, fan-out, idempotency, order, edit/delete,
typing, read pointers, presence, resume."""

from __future__ import annotations

import asyncio

from tests.support.clients import Ws, unique
from tests.support.fixtures import Server


async def test_dm_live_both_ways_with_acks(server: Server) -> None:
    alice, bob = await server.api.register(), await server.api.register()
    cid = await server.api.dm(alice, bob)
    wa, wb = await server.ws(alice), await server.ws(bob)
    ack = await wa.request(
        {"type": "send", "conversation_id": cid, "client_id": "a1", "body": "hi bob"}
    )
    assert ack["type"] == "ack" and ack["seq"] == 1 and ack["duplicate"] is False
    got = await wb.wait(lambda f: f.get("type") == "message" and f["client_id"] == "a1")
    assert got["body"] == "hi bob" and got["sender_id"] == alice.id and got["seq"] == 1
    ack2 = await wb.request(
        {"type": "send", "conversation_id": cid, "client_id": "b1", "body": "hi alice"}
    )
    assert ack2["seq"] == 2
    back = await wa.wait(lambda f: f.get("type") == "message" and f["client_id"] == "b1")
    assert back["body"] == "hi alice"
    await wa.close()
    await wb.close()


async def test_retry_with_same_client_id_returns_original_seq(server: Server) -> None:
    alice, bob = await server.api.register(), await server.api.register()
    cid = await server.api.dm(alice, bob)
    wa, wb = await server.ws(alice), await server.ws(bob)
    first = await wa.request(
        {"type": "send", "conversation_id": cid, "client_id": "same", "body": "once"}
    )
    again = await wa.request(
        {"type": "send", "conversation_id": cid, "client_id": "same", "body": "once"}
    )
    assert again["seq"] == first["seq"] and again["duplicate"] is True
    over_http = await server.api.http.post(
        f"/api/v1/conversations/{cid}/messages",
        headers=alice.auth,
        json={"client_id": "same", "body": "once"},
    )
    assert over_http.status_code == 200 and over_http.json()["duplicate"] is True
    await wa.request({"type": "send", "conversation_id": cid, "client_id": "next", "body": "2"})
    await wb.wait(lambda f: f.get("client_id") == "next")
    assert [m["client_id"] for m in wb.messages(cid)] == ["same", "next"]
    assert len(await server.api.history(bob, cid)) == 2
    await wa.close()
    await wb.close()


async def test_group_members_see_same_total_order(server: Server) -> None:
    owner, m1, m2 = [await server.api.register() for _ in range(3)]
    cid = await server.api.group(owner, m1, m2)
    sockets = [await server.ws(a) for a in (owner, m1, m2)]

    async def burst(i: int) -> None:
        for k in range(10):
            await sockets[i].request(
                {
                    "type": "send",
                    "conversation_id": cid,
                    "client_id": f"{i}-{k}",
                    "body": f"{i}:{k}",
                }
            )

    await asyncio.gather(*(burst(i) for i in range(3)))
    orders = []
    for s in sockets:
        got = await s.wait_count(lambda f: f.get("type") == "message", 30)
        assert [f["seq"] for f in got] == list(range(1, 31))
        orders.append([f["client_id"] for f in got])
    assert orders[0] == orders[1] == orders[2]
    for s in sockets:
        await s.close()


async def test_edit_and_delete_are_live_and_in_history(server: Server) -> None:
    alice, bob = await server.api.register(), await server.api.register()
    cid = await server.api.dm(alice, bob)
    wa, wb = await server.ws(alice), await server.ws(bob)
    sent = await wa.request(
        {"type": "send", "conversation_id": cid, "client_id": "e1", "body": "teh typo"}
    )
    edit = await wa.request(
        {
            "type": "edit",
            "conversation_id": cid,
            "seq": sent["seq"],
            "client_id": "e2",
            "body": "the typo",
        }
    )
    assert edit["type"] == "ack"
    seen = await wb.wait(lambda f: f.get("kind") == "edit")
    assert seen["target_seq"] == sent["seq"] and seen["body"] == "the typo"
    [msg] = await server.api.history(bob, cid)
    assert msg["body"] == "the typo" and msg["edited_ts"] is not None
    forbidden = await wb.request(
        {
            "type": "edit",
            "conversation_id": cid,
            "seq": sent["seq"],
            "client_id": "x",
            "body": "hijack",
        }
    )
    assert forbidden["type"] == "error" and forbidden["code"] == "not_author"
    await wa.request(
        {"type": "delete", "conversation_id": cid, "seq": sent["seq"], "client_id": "e3"}
    )
    await wb.wait(lambda f: f.get("kind") == "delete")
    # A retried delete (same client_id) answers with the original event, over HTTP too.
    again = await server.api.http.delete(
        f"/api/v1/conversations/{cid}/messages/{sent['seq']}",
        headers=alice.auth,
        params={"client_id": "e3"},
    )
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    other = await server.api.http.delete(
        f"/api/v1/conversations/{cid}/messages/{sent['seq']}",
        headers=alice.auth,
        params={"client_id": "e4"},
    )
    assert other.status_code == 404
    [gone] = await server.api.history(bob, cid)
    assert gone["deleted"] is True and gone["body"] == ""
    await wa.close()
    await wb.close()


async def test_typing_reaches_members_only(server: Server) -> None:
    alice, bob, eve = (
        await server.api.register(),
        await server.api.register(),
        await server.api.register(),
    )
    cid = await server.api.dm(alice, bob)
    wa, wb, we = await server.ws(alice), await server.ws(bob), await server.ws(eve)
    await wa.send({"type": "typing", "conversation_id": cid})
    typing = await wb.wait(lambda f: f.get("type") == "typing")
    assert typing["user_id"] == alice.id and typing["conversation_id"] == cid
    # eve shares no conversation with alice: a ping round-trip shows nothing reached her.
    await we.request({"type": "ping"})
    assert not [f for f in we.frames if f.get("type") == "typing"]
    for s in (wa, wb, we):
        await s.close()


async def test_read_pointer_and_unread_counts(server: Server) -> None:
    alice, bob = await server.api.register(), await server.api.register()
    cid = await server.api.dm(alice, bob)
    for i in range(3):
        await server.api.send(alice, cid, f"m{i}")
    listing = (await server.api.http.get("/api/v1/conversations", headers=bob.auth)).json()
    [conv] = [c for c in listing["conversations"] if c["id"] == cid]
    assert conv["unread"] == 3 and conv["last_message"]["body"] == "m2"
    wa, wb = await server.ws(alice), await server.ws(bob)
    ack = await wb.request({"type": "read", "conversation_id": cid, "seq": 2})
    assert ack["read_seq"] == 2
    receipt = await wa.wait(lambda f: f.get("type") == "read")
    assert receipt["user_id"] == bob.id and receipt["seq"] == 2
    listing = (await server.api.http.get("/api/v1/conversations", headers=bob.auth)).json()
    [conv] = [c for c in listing["conversations"] if c["id"] == cid]
    assert conv["unread"] == 1
    # The pointer never moves back.
    back = await wb.request({"type": "read", "conversation_id": cid, "seq": 1})
    assert back["read_seq"] == 2
    await wa.close()
    await wb.close()


async def test_presence_online_idle_offline(server: Server) -> None:
    alice, bob = await server.api.register(), await server.api.register()
    await server.api.dm(alice, bob)
    wb = await server.ws(bob)
    wa = await server.ws(alice)
    online = await wb.wait(lambda f: f.get("type") == "presence" and f["user_id"] == alice.id)
    assert online["state"] == "online"
    await wa.send({"type": "presence", "state": "idle"})
    await wb.wait(lambda f: f.get("type") == "presence" and f["state"] == "idle")
    r = await server.api.http.get("/api/v1/presence", headers=bob.auth)
    states = {p["user_id"]: p["state"] for p in r.json()["presence"]}
    assert states[alice.id] == "idle"
    await wa.close()
    offline = await wb.wait(lambda f: f.get("type") == "presence" and f["state"] == "offline")
    assert offline["last_seen"] is not None
    await wb.close()


async def test_resume_replays_exactly_the_gap(server: Server) -> None:
    alice, bob = await server.api.register(), await server.api.register()
    cid = await server.api.dm(alice, bob)
    for i in range(3):
        await server.api.send(alice, cid, f"before{i}")
    wb = await server.ws(bob)
    await wb.close()
    for i in range(4):
        await server.api.send(alice, cid, f"while-away{i}")
    wb2 = await server.ws(bob)
    resumed = await wb2.request({"type": "resume", "conversations": {cid: 3}})
    assert resumed["type"] == "resumed" and resumed["conversations"][cid] == 7
    assert resumed["not_recoverable"] == []
    replayed = wb2.messages(cid)
    assert [m["seq"] for m in replayed] == [4, 5, 6, 7]
    await server.api.send(alice, cid, "live")
    live = await wb2.wait(lambda f: f.get("body") == "live")
    assert live["seq"] == 8
    assert [m["seq"] for m in wb2.messages(cid)] == [4, 5, 6, 7, 8]
    await wb2.close()


async def test_resume_from_the_future_is_not_recoverable(server: Server) -> None:
    alice, bob = await server.api.register(), await server.api.register()
    cid = await server.api.dm(alice, bob)
    await server.api.send(alice, cid, "one")
    wb = await server.ws(bob)
    resumed = await wb.request({"type": "resume", "conversations": {cid: 99}})
    assert resumed["not_recoverable"] == [cid]
    await wb.close()


async def test_joining_a_group_subscribes_live(server: Server) -> None:
    owner, late = await server.api.register(), await server.api.register()
    cid = await server.api.group(owner, title=unique("g"))
    wl = await server.ws(late)
    r = await server.api.http.post(
        f"/api/v1/conversations/{cid}/members", headers=owner.auth, json={"user_id": late.id}
    )
    assert r.status_code == 200, r.text
    await wl.wait(lambda f: f.get("type") == "conversation" and f["conversation"]["id"] == cid)
    await server.api.send(owner, cid, "welcome")
    got = await wl.wait(lambda f: f.get("body") == "welcome")
    assert got["conversation_id"] == cid
    r = await server.api.http.delete(
        f"/api/v1/conversations/{cid}/members/{late.id}", headers=late.auth
    )
    assert r.status_code == 204
    await wl.wait(lambda f: f.get("type") == "conversation_left")
    await server.api.send(owner, cid, "after you left")
    await wl.request({"type": "ping"})
    assert not [f for f in wl.frames if f.get("body") == "after you left"]
    await wl.close()


async def test_resume_in_auth_frame_replays_gap_before_live_events(server: Server) -> None:
    """Positions given in the auth frame place the cursors before any live event is written:
    the socket gets the gap and then live events, each once and in seq order, even when new
    messages land while the replay is running."""
    alice, bob = await server.api.register(), await server.api.register()
    cid = await server.api.dm(alice, bob)
    for i in range(5):
        await server.api.send(alice, cid, f"m{i}")
    wa = await server.ws(alice)
    wb = await Ws.connect(server.ws_url, server.origin)
    auth = wb.request({"type": "auth", "token": bob.access, "resume": {cid: 2}})
    live = asyncio.gather(
        *(
            wa.request(
                {
                    "type": "send",
                    "conversation_id": cid,
                    "client_id": f"live{i}",
                    "body": f"live {i}",
                }
            )
            for i in range(3)
        )
    )
    ready, _ = await asyncio.gather(auth, live)
    assert ready["type"] == "ready"
    assert ready["conversations"][cid] == 2
    got = await wb.wait_count(lambda f: f.get("type") == "message", 6)
    assert [f["seq"] for f in got] == [3, 4, 5, 6, 7, 8]
    bad = await Ws.connect(server.ws_url, server.origin)
    err = await bad.request({"type": "auth", "token": bob.access, "resume": {cid: "x"}})
    assert err["code"] == "invalid_request"
    for s in (wa, wb, bad):
        await s.close()


async def test_resume_above_last_seq_jumps_to_last_seq_and_stays_live(server: Server) -> None:
    """A claimed position above last_seq (in `resume` or in the auth frame) is not
    recoverable: the cursor comes down to the current last_seq and live delivery continues."""
    alice, bob = await server.api.register(), await server.api.register()
    cid = await server.api.dm(alice, bob)
    await server.api.send(alice, cid, "one")
    wb = await server.ws(bob)
    resumed = await wb.request({"type": "resume", "conversations": {cid: 99}})
    assert resumed["not_recoverable"] == [cid] and resumed["conversations"][cid] == 1
    wc = await Ws.connect(server.ws_url, server.origin)
    ready = await wc.request({"type": "auth", "token": bob.access, "resume": {cid: 50}})
    assert ready["type"] == "ready"
    await wc.wait(lambda f: f.get("code") == "not_recoverable")
    await server.api.send(alice, cid, "two")
    for sock in (wb, wc):
        live = await sock.wait(lambda f: f.get("body") == "two")
        assert live["seq"] == 2
    await wb.close()
    await wc.close()


async def test_retried_edit_and_delete_get_the_original_ack(server: Server) -> None:
    """One rule for idempotency: a client_id already used by this sender in this conversation
    is answered with the original event and `duplicate: true`, whatever happened to the target
    since; a new client_id on a deleted message is `message_not_found`."""
    alice, bob = await server.api.register(), await server.api.register()
    cid = await server.api.dm(alice, bob)
    wa = await server.ws(alice)
    sent = await wa.request({"type": "send", "conversation_id": cid, "client_id": "t", "body": "x"})
    edit = {"type": "edit", "conversation_id": cid, "seq": sent["seq"], "client_id": "ed"}
    first_edit = await wa.request({**edit, "body": "y"})
    delete = {"type": "delete", "conversation_id": cid, "seq": sent["seq"], "client_id": "del"}
    first_delete = await wa.request(delete)
    assert first_edit["duplicate"] is False and first_delete["duplicate"] is False
    again_delete = await wa.request(delete)
    assert again_delete["type"] == "ack", again_delete
    assert again_delete["duplicate"] is True and again_delete["seq"] == first_delete["seq"]
    again_edit = await wa.request({**edit, "body": "y"})
    assert again_edit["type"] == "ack", again_edit
    assert again_edit["duplicate"] is True and again_edit["seq"] == first_edit["seq"]
    fresh = await wa.request({**delete, "client_id": "del2"})
    assert fresh["type"] == "error" and fresh["code"] == "message_not_found"
    fresh_edit = await wa.request({**edit, "client_id": "ed2", "body": "z"})
    assert fresh_edit["type"] == "error" and fresh_edit["code"] == "message_not_found"
    # Nothing new was appended by the retries.
    await wa.request({"type": "send", "conversation_id": cid, "client_id": "end", "body": "e"})
    assert [m["seq"] for m in wa.messages(cid)] == [1, 2, 3, 4]
    await wa.close()
