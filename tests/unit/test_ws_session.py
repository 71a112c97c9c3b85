"""The gateway's session state machine without a socket or Tornado: auth, dispatch, resume and
close policy, driven through its `Transport` and an explicit clock.

The hub and the bus are the real ones (`Gateway`, the embedded `MemoryBus`); the chat services
are small in-memory fakes, only here, so each test states exactly what the services answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from chat.domain.accounts import Principal
from chat.domain.channels import conversation_channel, user_channel
from chat.domain.errors import ChatError, Forbidden, RateLimited, Unauthenticated, Unavailable
from chat.domain.frames import control_frame, event_frame
from chat.domain.limits import Limits
from chat.domain.messaging import Replay
from chat.domain.models import AppendResult, Event, EventKind, User
from chat.metrics import Metrics
from chat.stores.embedded.bus import MemoryBus
from chat.ws import close_codes
from chat.ws.close_codes import CloseCode
from chat.ws.commands import COMMANDS
from chat.ws.deps import GatewayDeps
from chat.ws.hub import Gateway
from chat.ws.policy import close_for_auth_error
from chat.ws.protocol import CLIENT_TYPES
from chat.ws.session import Session, SessionState

AUTH_S, BEAT_S, AGE_S = 10.0, 20.0, 3600.0


# -- fakes: time, the socket, the chat services ---------------------------------------------
@dataclass
class FakeTimer:
    due: float
    callback: Callable[[], None]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


class Clock:
    """Timers fire only when a test advances time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[FakeTimer] = []

    def __call__(self, delay: float, callback: Callable[[], None]) -> FakeTimer:
        timer = FakeTimer(self.now + delay, callback)
        self.timers.append(timer)
        return timer

    def advance(self, seconds: float) -> None:
        self.now += seconds
        due = sorted((t for t in self.timers if not t.cancelled and t.due <= self.now),
                     key=lambda t: t.due)  # fmt: skip
        for timer in due:
            self.timers.remove(timer)
            timer.callback()


class FakeTransport:
    """Records frames; over `budget` frames it refuses (a slow consumer). A close is answered
    by the client at once, as a well-behaved one does."""

    def __init__(self, budget: int = 10_000) -> None:
        self.budget = budget
        self.frames: list[dict[str, Any]] = []
        self.replayed: list[bool] = []
        self.closes: list[CloseCode] = []
        self.session: Session | None = None
        self._open = True

    @property
    def open(self) -> bool:
        return self._open

    @property
    def queued_bytes(self) -> int:
        return 0

    def write(self, payload: bytes, kind: str) -> bool:
        if len(self.frames) >= self.budget:
            return False
        frame = orjson.loads(payload)
        assert frame["type"] == kind
        self.frames.append(frame)
        return True

    def deliver(self, payload: bytes, ts: int, replayed: bool) -> bool:
        if not self.write(payload, "message"):
            return False
        self.replayed.append(replayed)
        return True

    def close(self, code: CloseCode) -> None:
        self.closes.append(code)
        self._open = False
        assert self.session is not None
        asyncio.get_running_loop().call_soon(self.session.closed)

    async def writable(self) -> None:
        return None

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [f for f in self.frames if f["type"] == kind]


class Accounts:
    def __init__(self) -> None:
        self.principals: dict[str, Principal] = {}
        self.error: ChatError | None = None

    async def authenticate(self, access_token: object) -> Principal:
        if self.error is not None:
            raise self.error
        if not isinstance(access_token, str) or access_token not in self.principals:
            raise Unauthenticated("token is not valid", code="token_invalid")
        return self.principals[access_token]


@dataclass
class Presence:
    connected: set[str] = field(default_factory=set)
    beats: int = 0
    limit: int = 10
    renewals: int = 0
    released: bool = False

    async def connect(self, who: Principal, connection_id: str) -> None:
        if len(self.connected) >= self.limit:
            raise RateLimited("too many", code="too_many_connections")
        self.connected.add(connection_id)

    async def disconnect(self, who: Principal, connection_id: str) -> None:
        self.connected.discard(connection_id)

    async def heartbeat(self, who: Principal, connection_id: str) -> None:
        self.beats += 1

    async def set_state(self, who: Principal, connection_id: str, state: object) -> None:
        return None

    async def renew(self) -> None:
        self.renewals += 1

    async def release(self) -> None:
        self.released = True


class Messaging:
    """Conversations as lists of events; an append publishes on the bus, as the log does."""

    def __init__(self, bus: MemoryBus, members: dict[str, set[str]]) -> None:
        self.bus = bus
        self.members = members
        self.log: dict[str, list[Event]] = {cid: [] for cid in members}
        self.keep_from = 1  # events below this seq were trimmed: not recoverable

    async def send(
        self, who: Principal, conversation_id: object, client_id: object, body: object
    ) -> AppendResult:
        cid = str(conversation_id)
        if who.user.id not in self.members.get(cid, ()):
            raise Forbidden("not a member", code="not_member")
        return AppendResult(await self.append(cid, who.user.id, str(client_id), str(body)), False)

    async def append(self, cid: str, sender: str, client_id: str, body: str) -> Event:
        events = self.log[cid]
        event = Event(cid, len(events) + 1, EventKind.MESSAGE, sender, client_id, body, None, 0)
        events.append(event)
        await self.bus.publish(conversation_channel(cid), event_frame(event))
        return event

    async def replay(self, conversation_id: str, after_seq: int) -> Replay:
        events = self.log[conversation_id]
        if after_seq > len(events) or after_seq + 1 < self.keep_from:
            return Replay(conversation_id, (), False)
        return Replay(conversation_id, tuple(events[after_seq:]), True)

    async def last_seq(self, conversation_id: str) -> int:
        return len(self.log[conversation_id])

    async def conversation_ids_for_user(self, user_id: str) -> list[str]:
        return sorted(cid for cid, users in self.members.items() if user_id in users)

    async def edit(self, *args: object) -> AppendResult:
        raise NotImplementedError

    async def delete(self, *args: object) -> AppendResult:
        raise NotImplementedError

    async def read_up_to(self, who: Principal, conversation_id: object, seq: object) -> int:
        return int(str(seq))

    async def typing(self, who: Principal, conversation_id: object) -> None:
        return None


class World:
    """One gateway process: a hub on a bus, the services, a clock; sockets opened on demand."""

    def __init__(self, **limits: Any) -> None:
        self.bus = MemoryBus()
        self.accounts = Accounts()
        self.presence = Presence()
        self.messaging = Messaging(self.bus, {"c1": {"alice", "bob"}, "c2": {"alice"}})
        self.metrics = Metrics()
        self.clock = Clock()
        base = {"max_connection_age_jitter": 0.0, "auth_timeout_s": AUTH_S}
        self.hub = Gateway(
            GatewayDeps(
                accounts=self.accounts,
                presence=self.presence,
                messaging=self.messaging,
                conversations=self.messaging,
                bus=self.bus,
                limits=Limits(**{**base, **limits}),
                metrics=self.metrics,
                origins=frozenset({"https://chat.example"}),
                origins_exclusive=False,
                drain_timeout_s=1.0,
                draining=lambda: True,  # no loop-lag probe left running between tests
            )
        )
        for name in ("alice", "bob"):
            self.accounts.principals[f"token-{name}"] = Principal(User(name, name, name, 0), name)

    async def open(self, budget: int = 10_000) -> tuple[Session, FakeTransport]:
        transport = FakeTransport(budget)
        session = Session(self.hub, transport, schedule=self.clock)
        transport.session = session
        await session.start()
        return session, transport

    async def connect(self, who: str = "alice", **auth: Any) -> tuple[Session, FakeTransport]:
        session, transport = await self.open(auth.pop("budget", 10_000))
        await frame(session, type="auth", token=f"token-{who}", **auth)
        assert session.state is SessionState.AUTHENTICATED, transport.frames
        return session, transport

    def sample(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0


async def frame(session: Session, **fields: Any) -> None:
    """A client's JSON text frame."""
    await session.receive(orjson.dumps(fields).decode())


async def settle(session: Session) -> None:
    """Background fills finish (bounded: a fill is a few awaits on in-memory fakes)."""
    for _ in range(200):
        if not any(c.filling for c in session.cursors.cursors.values()):
            return
        await asyncio.sleep(0)
    raise AssertionError("fills did not finish")


async def gone(session: Session) -> None:
    for _ in range(100):
        if session.state is SessionState.CLOSED:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"session still {session.state}")


# -- auth ------------------------------------------------------------------------------------
async def test_auth_ok_says_ready_with_positions_and_limits() -> None:
    w = World()
    await w.messaging.append("c1", "bob", "m1", "hi")
    session, t = await w.connect("alice", ref="a1")
    (ready,) = t.of("ready")
    assert ready["ref"] == "a1" and ready["user_id"] == "alice"
    assert ready["conversations"] == {"c1": 1, "c2": 0}
    assert ready["limits"]["heartbeat_interval_s"] == w.hub.deps.limits.heartbeat_interval_s
    assert ready["connection_id"] == session.connection_id
    assert session in w.hub.sockets and session.connection_id in w.presence.connected
    assert w.sample("chat_ws_connections") == 1
    assert set(w.hub.routes) == {user_channel("alice"), *map(conversation_channel, ("c1", "c2"))}


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (Unauthenticated("bad", code="token_invalid"), close_codes.UNAUTHENTICATED),
        (Unauthenticated("ended", code="session_revoked"), close_codes.UNAUTHENTICATED),
        (Forbidden("disabled", code="user_disabled"), close_codes.DISABLED),
        (RateLimited("many", code="too_many_connections"), close_codes.TOO_MANY_CONNECTIONS),
        (Unavailable("redis down", code="dependency_unavailable"), close_codes.TRY_LATER),
    ],
)
async def test_auth_failure_is_an_error_then_its_close_code(
    error: ChatError, code: CloseCode
) -> None:
    w = World()
    w.accounts.error = error
    session, t = await w.open()
    await frame(session, type="auth", token="token-alice", ref=7)
    assert [(f["code"], f["ref"]) for f in t.frames] == [(error.code, 7)]
    assert t.closes == [code]
    assert close_for_auth_error(error) is code
    await gone(session)
    assert not w.hub.sockets and not w.presence.connected
    assert w.sample("chat_auth_failures_total", transport="ws", reason=error.code) == 1


async def test_connection_limit_comes_from_presence() -> None:
    w = World()
    w.presence.limit = 0
    session, t = await w.open()
    await frame(session, type="auth", token="token-alice")
    assert t.frames[0]["code"] == "too_many_connections"
    assert t.closes == [close_codes.TOO_MANY_CONNECTIONS]


async def test_no_auth_frame_in_time_closes_4408_and_auth_cancels_the_deadline() -> None:
    w = World()
    late, t_late = await w.open()
    w.clock.advance(AUTH_S - 0.1)
    assert t_late.closes == []
    w.clock.advance(0.1)
    assert t_late.closes == [close_codes.AUTH_TIMEOUT]
    await gone(late)
    _, t = await w.connect()
    w.clock.advance(AUTH_S * 2)
    assert t.closes == []


@pytest.mark.parametrize(
    ("raw", "code", "close"),
    [
        ({"type": "send", "conversation_id": "c1"}, "invalid_request", close_codes.PROTOCOL),
        ({"type": "shout"}, "unknown_type", close_codes.PROTOCOL),
        ("not json", "bad_json", close_codes.PROTOCOL),
        (b'{"type": "auth"}', None, close_codes.BINARY),  # a binary frame is not even read
    ],
)
async def test_frames_before_auth_close_the_socket(
    raw: dict[str, Any] | str | bytes, code: str | None, close: CloseCode
) -> None:
    w = World()
    session, t = await w.open()
    await session.receive(orjson.dumps(raw).decode() if isinstance(raw, dict) else raw)
    assert [f["code"] for f in t.frames] == ([code] if code else [])
    assert t.closes == [close]
    assert w.messaging.log["c1"] == []
    await gone(session)
    await frame(session, type="auth", token="token-alice")
    assert len(t.frames) == (1 if code else 0)  # a closed session reads nothing more


# -- dispatch --------------------------------------------------------------------------------
def test_every_client_frame_type_has_a_command() -> None:
    assert set(COMMANDS) == CLIENT_TYPES


async def test_after_auth_refusals_are_error_frames_and_the_socket_stays() -> None:
    w = World()
    session, t = await w.connect()
    await frame(session, type="shout", ref="r1")
    await frame(session, type="auth", token="token-alice", ref="r2")
    await frame(session, type="send", conversation_id="nope", client_id="x", body="b", ref="r3")
    errors = [(f["code"], f["ref"]) for f in t.of("error")]
    assert errors == [("unknown_type", "r1"), ("invalid_request", "r2"), ("not_member", "r3")]
    assert t.closes == [] and session.state is SessionState.AUTHENTICATED


async def test_send_is_acked_and_delivered_live_to_every_subscriber() -> None:
    w = World()
    alice, ta = await w.connect("alice")
    bob, tb = await w.connect("bob")
    await frame(alice, type="send", conversation_id="c1", client_id="m1", body="hi", ref=1)
    (ack,) = ta.of("ack")
    assert (ack["ref"], ack["seq"], ack["client_id"], ack["duplicate"]) == (1, 1, "m1", False)
    for t in (ta, tb):
        assert [(m["seq"], m["body"]) for m in t.of("message")] == [(1, "hi")]
        assert t.replayed == [False]
    await frame(bob, type="ping", ref="p")
    assert tb.of("pong") == [{"type": "pong", "ref": "p"}]
    await frame(bob, type="read", conversation_id="c1", seq=1, ref="rd")
    assert tb.of("ack")[-1] == {"type": "ack", "ref": "rd", "conversation_id": "c1", "read_seq": 1}


async def test_joined_and_left_control_frames_subscribe_and_unsubscribe() -> None:
    w = World()
    bob, t = await w.connect("bob")
    w.messaging.members["c2"].add("bob")
    conversation = {"id": "c2", "title": "new"}
    await w.bus.publish(user_channel("bob"), control_frame("joined", conversation=conversation))
    for _ in range(200):  # the subscription is made in the background: a few loop turns
        if t.of("conversation"):
            break
        await asyncio.sleep(0)
    assert t.of("conversation") == [
        {"type": "conversation", "conversation": conversation, "last_seq": 0}
    ]
    await w.messaging.append("c2", "alice", "m1", "welcome")
    assert [m["body"] for m in t.of("message")] == ["welcome"]
    await w.bus.publish(user_channel("bob"), control_frame("left", conversation_id="c2"))
    await asyncio.sleep(0)
    assert t.of("conversation_left") == [{"type": "conversation_left", "conversation_id": "c2"}]
    await w.messaging.append("c2", "alice", "m2", "after")
    assert len(t.of("message")) == 1 and "c2" not in bob.cursors.cursors


async def test_logout_control_frame_closes_only_that_session() -> None:
    w = World()
    alice, t = await w.connect("alice")
    other = control_frame("close", session_id="someone-else", code=4409)
    await w.bus.publish(user_channel("alice"), other)
    assert t.closes == []
    await w.bus.publish(user_channel("alice"), control_frame("close", session_id="alice"))
    assert t.closes == [close_codes.SESSION_REVOKED]
    await gone(alice)
    await cleaned_up(w)
    assert not w.hub.sockets


async def cleaned_up(w: World) -> None:
    """A closed session leaves its channels and its presence (in a background task)."""
    for _ in range(50):
        if not w.presence.connected and not w.hub.routes:
            return
        await asyncio.sleep(0)
    raise AssertionError("cleanup did not run")


# -- resume ----------------------------------------------------------------------------------
async def test_resume_in_the_auth_frame_replays_the_gap_and_names_foreign_conversations() -> None:
    w = World()
    for i in range(1, 4):
        await w.messaging.append("c1", "alice", f"m{i}", f"b{i}")
    bob, t = await w.connect("bob", resume={"c1": 1, "c2": 0})
    await settle(bob)
    assert [m["seq"] for m in t.of("message")] == [2, 3]
    assert t.replayed == [True, True]
    assert t.of("ready")[0]["conversations"] == {"c1": 1}
    assert [(e["code"], e["details"]) for e in t.of("error")] == [
        ("not_member", {"conversation_id": "c2"})
    ]
    assert t.frames.index(t.of("ready")[0]) < t.frames.index(t.of("error")[0])


async def test_resume_frame_replays_or_says_not_recoverable() -> None:
    w = World()
    for i in range(1, 6):
        await w.messaging.append("c1", "alice", f"m{i}", "b")
    bob, t = await w.connect("bob")
    await frame(bob, type="resume", conversations={"c1": 3}, ref="r")
    (resumed,) = t.of("resumed")
    assert resumed == {"type": "resumed", "ref": "r", "conversations": {"c1": 5},
                       "not_recoverable": []}  # fmt: skip
    assert [m["seq"] for m in t.of("message")] == [4, 5]
    w.messaging.keep_from = 4
    await frame(bob, type="resume", conversations={"c1": 1}, ref="r2")
    assert t.of("resumed")[-1]["not_recoverable"] == ["c1"]
    assert t.of("error")[-1]["code"] == "not_recoverable"
    await frame(bob, type="resume", conversations={"c2": 0}, ref="r3")
    assert t.of("error")[-1]["code"] == "not_member" and t.closes == []


# -- close policy ----------------------------------------------------------------------------
async def test_slow_consumer_is_closed_4008_and_nothing_more_is_written_or_counted() -> None:
    w = World()
    bob, t = await w.connect("bob", budget=3)  # ready + 2 messages fit
    for i in range(5):
        await w.messaging.append("c1", "alice", f"m{i}", "b")
    assert [m["seq"] for m in t.of("message")] == [1, 2]
    assert t.closes == [close_codes.SLOW_CONSUMER]
    assert w.sample("chat_ws_closes_total", code="4008") == 1
    assert bob.closing and bob.send_frame(b'{"type":"typing"}', "typing") is False
    await gone(bob)
    assert w.sample("chat_ws_connections") == 0
    await cleaned_up(w)


async def test_drain_closes_every_session_1012_and_waits_for_them() -> None:
    w = World()
    sessions = [await w.connect(who) for who in ("alice", "bob", "alice")]
    pending, _ = await w.open()  # not authenticated: not the drain's to wait for
    await asyncio.wait_for(w.hub.drain(), 1)
    assert [t.closes for _, t in sessions] == [[close_codes.RESTARTING]] * 3
    assert all(s.state is SessionState.CLOSED for s, _ in sessions)
    assert not w.hub.sockets and pending.state is SessionState.AWAITING_AUTH


async def test_a_bus_reset_refreshes_presence_within_a_heartbeat() -> None:
    """Redis may have lost the entries (a failover drops the last writes): every socket writes
    its own again within a heartbeat, not at its next refresh minutes later, and only once."""
    w = World(heartbeat_interval_s=BEAT_S, max_connection_age_s=AGE_S)
    await w.connect("alice")
    await w.connect("bob")
    w.clock.advance(BEAT_S - 1)
    await asyncio.sleep(0)
    assert w.presence.beats == 0
    w.hub.on_reset()
    w.clock.advance(BEAT_S)
    await asyncio.sleep(0)
    assert w.presence.beats == 2
    # Back on the refresh's own period: the next one is `presence_refresh_s` after that one
    # (which came up to a heartbeat after the reset).
    w.clock.advance(w.hub.deps.limits.presence_refresh_s - BEAT_S - 1)
    await asyncio.sleep(0)
    assert w.presence.beats == 2
    w.clock.advance(BEAT_S + 1)
    await asyncio.sleep(0)
    assert w.presence.beats == 4


async def test_max_age_closes_1012_and_heartbeat_refreshes_presence() -> None:
    w = World(heartbeat_interval_s=BEAT_S, max_connection_age_s=AGE_S)
    refresh_s = w.hub.deps.limits.presence_refresh_s
    assert refresh_s > BEAT_S  # the process's lease is renewed every beat, not each socket
    _, t = await w.connect()
    w.clock.advance(refresh_s - 1)
    await asyncio.sleep(0)
    assert w.presence.beats == 0
    for _ in range(3):
        w.clock.advance(refresh_s if w.presence.beats else 1)
        await asyncio.sleep(0)
    assert w.presence.beats == 3
    w.clock.advance(AGE_S - 3 * refresh_s - 1)
    assert t.closes == []
    w.clock.advance(1)
    assert t.closes == [close_codes.RESTARTING]


def test_illegal_transitions_are_refused() -> None:
    w = World()
    session = Session(w.hub, FakeTransport(), schedule=w.clock)
    session.closed()
    with pytest.raises(RuntimeError, match="closed to authenticated"):
        session.move(SessionState.AUTHENTICATED)
