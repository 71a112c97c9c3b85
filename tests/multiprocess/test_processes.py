"""Two gateway processes, an API process and two worker processes behind haproxy: clients on
different gateways chat; one drops and resumes on the other gateway without a gap; the workers
archive; a draining gateway sends its sockets elsewhere with 1012."""

from __future__ import annotations

import asyncio

from tests.multiprocess.conftest import ClusterFactory
from tests.multiprocess.helpers import backend_of, connect, connect_avoiding, eventually, watermarks
from tests.support.clients import Api
from tools.devcluster.cluster import AppCluster, Backing


async def test_chat_across_gateway_processes_and_resume_on_the_other(
    make_cluster: ClusterFactory, backing: Backing
) -> None:
    cluster = await asyncio.to_thread(make_cluster, backing)
    api = Api(cluster.url)
    try:
        await _chat_and_resume(cluster, api, backing)
    finally:
        await api.close()


async def _chat_and_resume(cluster: AppCluster, api: Api, backing: Backing) -> None:
    alice, bob = await api.register(), await api.register()
    cid = await api.dm(alice, bob)
    wa = await connect(cluster, alice)
    wb = await connect_avoiding(cluster, bob, avoid=backend_of(wa))
    gateways = {backend_of(wa), backend_of(wb)}
    assert gateways == {"ws0", "ws1"}, gateways

    for i in range(5):
        ack = await wa.request(
            {"type": "send", "conversation_id": cid, "client_id": f"a{i}", "body": f"A {i}"}
        )
        assert ack["type"] == "ack" and ack["seq"] == i + 1, ack
    got = await wb.wait_count(lambda f: f.get("type") == "message", 5, timeout=10)
    assert [(f["seq"], f["client_id"]) for f in got] == [(i + 1, f"a{i}") for i in range(5)]
    reply = await wb.request(
        {"type": "send", "conversation_id": cid, "client_id": "b0", "body": "from B"}
    )
    assert reply["seq"] == 6
    await wa.wait(lambda f: f.get("type") == "message" and f.get("client_id") == "b0", 10)

    # Bob drops; Alice goes on (over WebSocket and over HTTP, through the API process); Bob
    # comes back through haproxy on Alice's gateway and resumes from seq 6.
    bob_was_on = backend_of(wb)
    await wb.close()
    for i in range(2):
        await wa.request(
            {"type": "send", "conversation_id": cid, "client_id": f"away{i}", "body": "hi"}
        )
    assert await api.send(alice, cid, "over http", client_id="http0") == 9
    back = await connect_avoiding(cluster, bob, avoid=bob_was_on)
    assert backend_of(back) == backend_of(wa)
    resumed = await back.request({"type": "resume", "conversations": {cid: 6}}, timeout=10)
    assert resumed["type"] == "resumed" and resumed["conversations"] == {cid: 9}, resumed
    assert resumed["not_recoverable"] == []
    assert [(m["seq"], m["client_id"]) for m in back.messages(cid)] == [
        (7, "away0"),
        (8, "away1"),
        (9, "http0"),
    ]
    # Live delivery continues right after the replay, once each.
    await wa.request({"type": "send", "conversation_id": cid, "client_id": "a-last", "body": "x"})
    await back.wait(lambda f: f.get("type") == "message" and f.get("seq") == 10, 10)
    await wa.wait(lambda f: f.get("type") == "message" and f.get("seq") == 10, 10)
    assert [m["seq"] for m in back.messages(cid)] == [7, 8, 9, 10]
    assert [m["seq"] for m in wa.messages(cid)] == list(range(1, 11))

    # The worker processes archive all ten; history through the API process has each once.
    async def archived() -> bool:
        return (await asyncio.to_thread(watermarks, backing, [cid]))[cid] == 10

    await eventually(archived, 30, "archive watermark reaching 10")
    history = await api.history(bob, cid)
    assert [(m["seq"], m["client_id"]) for m in history] == [
        *((i + 1, f"a{i}") for i in range(5)),
        (6, "b0"),
        (7, "away0"),
        (8, "away1"),
        (9, "http0"),
        (10, "a-last"),
    ]
    for s in (wa, back):
        await s.close()


async def test_draining_gateway_sends_its_sockets_to_the_other(
    make_cluster: ClusterFactory, backing: Backing
) -> None:
    cluster = await asyncio.to_thread(make_cluster, backing)
    api = Api(cluster.url)
    try:
        alice, bob = await api.register(), await api.register()
        cid = await api.dm(alice, bob)
        wa = await connect(cluster, alice)
        wb = await connect_avoiding(cluster, bob, avoid=backend_of(wa))
        draining = next(p for p in cluster.ws if p.name == backend_of(wb))
        assert draining.popen is not None
        draining.popen.terminate()  # SIGTERM: readiness fails, sockets get 1012
        assert await wb.wait_closed(timeout=15) == 1012
        await asyncio.to_thread(draining.popen.wait, 30)
        assert draining.popen.returncode == 0, draining.tail()
        await asyncio.to_thread(cluster.wait_backend, draining, "DOWN")

        # Reconnecting through the same URL lands on the remaining gateway and resumes.
        await api.send(alice, cid, "while bob reconnects", client_id="m1")
        back = await connect(cluster, bob)
        assert backend_of(back) == backend_of(wa)
        resumed = await back.request({"type": "resume", "conversations": {cid: 0}}, timeout=10)
        assert resumed["conversations"] == {cid: 1}
        assert [m["client_id"] for m in back.messages(cid)] == ["m1"]
        for s in (wa, back):
            await s.close()
    finally:
        await api.close()
