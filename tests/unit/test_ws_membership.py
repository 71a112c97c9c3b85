"""The gateway keeps the membership cache's rules (chat/domain/membership.py): the real hub on
the in-process bus, the real MessagingService on in-memory ports (counting the store's
`is_member` queries), no socket. A member's repeated sends ask the store once; a `left` frame
on the user's channel drops the answer before the next frame is served; a `close` frame, the
last socket going, a lost bus connection and a bus reset drop everything."""

from __future__ import annotations

import asyncio
from typing import Any

from chat.domain.channels import user_channel
from chat.domain.frames import control_frame
from chat.domain.limits import Limits
from chat.domain.membership import MembershipCache
from chat.domain.messaging import MessagingService
from chat.metrics import Metrics
from chat.stores.embedded.bus import MemoryBus
from chat.ws import close_codes
from chat.ws.deps import GatewayDeps
from chat.ws.hub import Gateway
from chat.ws.session import Session, SessionState
from tests.unit.support.messaging import (
    CID,
    MemoryArchive,
    MemoryLog,
    Published,
    Unlimited,
    principal,
)
from tests.unit.test_membership import CountingMembers
from tests.unit.test_ws_session import Accounts, Clock, FakeTransport, Presence, frame, gone


class World:
    def __init__(self) -> None:
        self.bus = MemoryBus()
        self.store = CountingMembers({CID: {"alice", "bob"}})
        self.cache = MembershipCache()
        published = Published()
        messaging = MessagingService(
            self.store,
            MemoryLog(),
            MemoryArchive(),
            published,
            published,
            Unlimited(),
            Limits(),
            self.cache,
        )
        self.accounts = Accounts()
        for name in ("alice", "bob"):
            self.accounts.principals[f"token-{name}"] = principal(name)
        self.hub = Gateway(
            GatewayDeps(
                accounts=self.accounts,
                presence=Presence(),
                messaging=messaging,
                conversations=self.store,
                bus=self.bus,
                limits=Limits(max_connection_age_jitter=0.0),
                metrics=Metrics(),
                origins=frozenset(),
                origins_exclusive=False,
                drain_timeout_s=1.0,
                draining=lambda: True,
                membership=self.cache,
            )
        )

    async def connect(self, who: str) -> tuple[Session, FakeTransport]:
        transport = FakeTransport()
        session = Session(self.hub, transport, schedule=Clock())
        transport.session = session
        await session.start()
        await frame(session, type="auth", token=f"token-{who}")
        assert session.state is SessionState.AUTHENTICATED, transport.frames
        return session, transport

    async def send(self, session: Session, client_id: str) -> dict[str, Any]:
        transport = session.transport
        assert isinstance(transport, FakeTransport)
        before = len(transport.frames)
        await frame(session, type="send", conversation_id=CID, client_id=client_id, body="x")
        (answer,) = [f for f in transport.frames[before:] if f["type"] in ("ack", "error")]
        return answer


async def test_repeated_sends_ask_the_store_once_and_left_refuses_the_next() -> None:
    w = World()
    alice, _ = await w.connect("alice")
    for i in range(4):
        assert (await w.send(alice, f"m{i}"))["type"] == "ack"
    assert w.store.queries == 1
    # Removed: the database first, then `left` on the user's channel (remove_member's order).
    w.store.members[CID].discard("alice")
    await w.bus.publish(user_channel("alice"), control_frame("left", conversation_id=CID))
    refused = await w.send(alice, "m9")  # no await between the frame and this check
    assert refused["type"] == "error" and refused["code"] == "not_member"


async def test_close_control_and_the_last_socket_going_drop_the_users_answers() -> None:
    w = World()
    a1, _ = await w.connect("alice")
    a2, _ = await w.connect("alice")
    await w.send(a1, "m1")
    assert w.cache.known(CID, "alice")
    await w.bus.publish(user_channel("alice"), control_frame("close", session_id="other"))
    assert not w.cache.known(CID, "alice")  # dropped even for a close aimed at another session
    await w.send(a1, "m2")
    a1.close_with(close_codes.RESTARTING)
    await gone(a1)
    assert w.cache.known(CID, "alice")  # a2 still subscribes to alice's channel
    a2.close_with(close_codes.RESTARTING)
    await gone(a2)
    assert not w.cache.known(CID, "alice") and len(w.cache) == 0
    w.cache.remember(CID, "alice", w.cache.version)  # nobody watched: nothing is kept
    assert not w.cache.known(CID, "alice")


async def test_bus_disconnect_and_reset_send_checks_back_to_the_store() -> None:
    w = World()
    bob, _ = await w.connect("bob")
    await w.send(bob, "m1")
    w.hub.on_disconnect()  # a `left` published from now on may never arrive
    assert len(w.cache) == 0
    await w.send(bob, "m2")
    await w.send(bob, "m3")
    assert w.store.queries == 3  # suspended: every check asks the store
    w.hub.on_reset()
    await asyncio.sleep(0)
    await w.send(bob, "m4")
    await w.send(bob, "m5")
    assert w.store.queries == 4  # resubscribed: remembered again
