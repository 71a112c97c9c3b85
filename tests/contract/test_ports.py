"""Store, bus and limiter guarantees (chat.domain.ports), for every implementation."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable

import pytest

from chat.domain.channels import conversation_channel
from chat.domain.chat import Ports
from chat.domain.errors import Conflict
from chat.domain.frames import event_frame
from chat.domain.models import (
    Conversation,
    ConversationKind,
    EventDraft,
    EventKind,
    Member,
    PresenceState,
    Role,
    User,
)


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(6)}"


def _msg(cid: str, sender: str, client_id: str, body: str = "hi") -> EventDraft:
    return EventDraft(cid, EventKind.MESSAGE, sender, client_id, body)


class Collector:
    def __init__(self) -> None:
        self.got: list[tuple[str, bytes]] = []
        self.resets = 0

    def on_message(self, channel: str, payload: bytes) -> None:
        self.got.append((channel, payload))

    def on_reset(self) -> None:
        self.resets += 1


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail("condition not reached in time")
        await asyncio.sleep(0.01)


# -- event log ------------------------------------------------------------------------------


async def test_append_assigns_gapless_seq_under_concurrency(ports: Ports) -> None:
    cid = _id("c")
    results = await asyncio.gather(
        *(ports.log.append(_msg(cid, f"u{i % 3}", f"m{i}")) for i in range(40))
    )
    assert sorted(r.event.seq for r in results) == list(range(1, 41))
    assert not any(r.duplicate for r in results)
    assert await ports.log.last_seq(cid) == 40
    page = await ports.log.read(cid, 0, 100)
    assert page.complete
    assert [e.seq for e in page.events] == list(range(1, 41))


async def test_append_is_idempotent_per_sender_and_client_id(ports: Ports) -> None:
    cid = _id("c")
    first = await ports.log.append(_msg(cid, "alice", "same", "one"))
    again = await ports.log.append(_msg(cid, "alice", "same", "changed body"))
    assert again.duplicate
    assert again.event == first.event
    other = await ports.log.append(_msg(cid, "bob", "same", "bob's"))
    assert not other.duplicate
    assert other.event.seq == 2
    assert await ports.log.last_seq(cid) == 2


async def test_append_publishes_frames_in_seq_order(ports: Ports) -> None:
    cid = _id("c")
    listener = Collector()
    sub = await ports.bus.open(listener)
    await sub.subscribe([conversation_channel(cid)])
    results = await asyncio.gather(*(ports.log.append(_msg(cid, "u", f"k{i}")) for i in range(20)))
    await eventually(lambda: len(listener.got) == 20)
    frames = {r.event.seq: event_frame(r.event) for r in results}
    assert [p for _, p in listener.got] == [frames[s] for s in range(1, 21)]
    dup = await ports.log.append(_msg(cid, "u", "k0"))
    assert dup.duplicate
    await ports.log.append(_msg(cid, "u", "fresh"))
    await eventually(lambda: len(listener.got) == 21)
    await sub.close()


async def test_read_ranges_and_trim_report_incomplete(ports: Ports) -> None:
    cid = _id("c")
    for i in range(10):
        await ports.log.append(_msg(cid, "u", f"m{i}"))
    page = await ports.log.read(cid, 4, 3)
    assert [e.seq for e in page.events] == [5, 6, 7]
    assert page.complete
    await ports.log.trim(cid, 6)
    assert (await ports.log.read(cid, 6, 100)).complete
    assert [e.seq for e in (await ports.log.read(cid, 6, 100)).events] == [7, 8, 9, 10]
    gap = await ports.log.read(cid, 2, 100)
    assert not gap.complete
    assert await ports.log.last_seq(cid) == 10
    nothing = await ports.log.read(_id("c"), 0, 10)
    assert nothing.events == ()
    assert nothing.complete


async def test_backlog_lists_conversations_with_logged_events(ports: Ports) -> None:
    cid = _id("c")
    await ports.log.append(_msg(cid, "u", "m"))
    await ports.log.append(_msg(cid, "u", "n"))
    assert (await ports.log.backlog())[cid] == await ports.log.last_seq(cid) == 2


# -- archive ----------------------------------------------------------------------------------


async def _events(ports: Ports, cid: str, n: int) -> list[object]:
    return [
        (
            await ports.log.append(
                _msg(cid, "alice" if i % 2 else "bob", f"m{i}", f"message number {i}")
            )
        ).event
        for i in range(n)
    ]


async def test_archive_apply_is_idempotent_and_paginates(ports: Ports) -> None:
    cid = _id("c")
    events = (await ports.log.read(cid, 0, 10)).events
    for i in range(12):
        await ports.log.append(_msg(cid, "alice" if i % 2 else "bob", f"m{i}", f"number {i}"))
    events = (await ports.log.read(cid, 0, 100)).events
    await ports.archive.apply(events[:5])
    await ports.archive.apply(events[:5])
    await ports.archive.record_watermarks({cid: 5})
    assert await ports.archive.watermark(cid) == 5
    await ports.archive.apply(events[5:])
    await ports.archive.apply(events)
    await ports.archive.record_watermarks({cid: 12})
    await ports.archive.record_watermarks({cid: 7})  # never back
    assert await ports.archive.watermark(cid) == 12
    newest = await ports.archive.history(cid, before=None, after=None, limit=5)
    assert [m.seq for m in newest] == [8, 9, 10, 11, 12]
    older = await ports.archive.history(cid, before=8, after=None, limit=5)
    assert [m.seq for m in older] == [3, 4, 5, 6, 7]
    after = await ports.archive.history(cid, before=None, after=10, limit=5)
    assert [m.seq for m in after] == [11, 12]
    replay = await ports.archive.events(cid, 9, 100)
    assert [e.seq for e in replay] == [10, 11, 12]
    assert replay[0] == events[9]
    assert await ports.archive.count_from_others(cid, "alice", 6, 12) == 3
    # Bounded above too: the caller counts what lies past its watermark from the log.
    assert await ports.archive.count_from_others(cid, "alice", 6, 10) == 2


async def test_archive_edits_never_overwrite_newer_and_delete_wins(ports: Ports) -> None:
    cid = _id("c")
    base = (await ports.log.append(_msg(cid, "a", "m", "original"))).event
    e1 = (
        await ports.log.append(EventDraft(cid, EventKind.EDIT, "a", "e1", "first edit", base.seq))
    ).event
    e2 = (
        await ports.log.append(EventDraft(cid, EventKind.EDIT, "a", "e2", "second edit", base.seq))
    ).event
    await ports.archive.apply([base, e1, e2])
    await ports.archive.apply([e1])  # a retried, older edit
    got = await ports.archive.get(cid, base.seq)
    assert got is not None
    assert got.body == "second edit"
    assert got.edited_ts is not None
    d = (await ports.log.append(EventDraft(cid, EventKind.DELETE, "a", "d", "", base.seq))).event
    await ports.archive.apply([d])
    await ports.archive.apply([e2])
    gone = await ports.archive.get(cid, base.seq)
    assert gone is not None
    assert gone.deleted
    assert gone.body == ""
    assert await ports.archive.search([cid], "edit", 10) == []


async def test_archive_search_is_scoped_and_case_insensitive(ports: Ports) -> None:
    mine, theirs = _id("c"), _id("c")
    for cid, text in (
        (mine, "Find the NEEDLE here"),
        (mine, "nothing"),
        (theirs, "needle elsewhere"),
        (mine, "100% _literal_"),
    ):
        await ports.archive.apply([(await ports.log.append(_msg(cid, "u", _id("m"), text))).event])
    found = await ports.archive.search([mine], "needle", 10)
    assert [m.body for m in found] == ["Find the NEEDLE here"]
    literal = await ports.archive.search([mine], "% _", 10)
    assert [m.body for m in literal] == ["100% _literal_"]
    both = await ports.archive.search([mine, theirs], "needle", 10)
    assert len(both) == 2


# -- accounts and conversations ---------------------------------------------------------------


def _user(name: str | None = None) -> User:
    return User(_id("u"), name or _id("name"), "Name", 1, False, False)


async def test_accounts_unique_usernames_and_disable(ports: Ports) -> None:
    user = _user()
    await ports.accounts.create_user(user, "hash")
    with pytest.raises(Conflict) as info:
        await ports.accounts.create_user(_user(user.username), "hash2")
    assert info.value.code == "username_taken"
    creds = await ports.accounts.credentials_by_username(user.username)
    assert creds is not None
    assert creds.password_hash == "hash"
    assert await ports.accounts.get_user(user.id) == user
    assert await ports.accounts.find_by_username(user.username) == user
    assert await ports.accounts.set_disabled(user.id, True)
    disabled = await ports.accounts.get_user(user.id)
    assert disabled is not None
    assert disabled.disabled
    assert not await ports.accounts.set_disabled(_id("u"), True)
    assert await ports.accounts.get_user(_id("u")) is None


async def test_direct_conversations_are_unique_per_pair(ports: Ports) -> None:
    a, b = _user(), _user()
    for u in (a, b):
        await ports.accounts.create_user(u, "h")
    key = ":".join(sorted((a.id, b.id)))

    def dm() -> Conversation:
        return Conversation(
            _id("c"),
            ConversationKind.DIRECT,
            "",
            a.id,
            1,
            (Member(a.id, Role.MEMBER, 0, 1), Member(b.id, Role.MEMBER, 0, 1)),
        )

    made = await asyncio.gather(*(ports.conversations.create(dm(), key) for _ in range(5)))
    assert len({c.id for c in made}) == 1
    assert await ports.conversations.is_member(made[0].id, b.id)
    assert made[0].id in await ports.conversations.conversation_ids_for_user(a.id)


async def test_membership_and_read_pointer(ports: Ports) -> None:
    owner, m = _user(), _user()
    for u in (owner, m):
        await ports.accounts.create_user(u, "h")
    conv = await ports.conversations.create(
        Conversation(
            _id("c"),
            ConversationKind.GROUP,
            "g",
            owner.id,
            1,
            (Member(owner.id, Role.OWNER, 0, 1),),
        ),
        None,
    )
    assert await ports.conversations.add_member(conv.id, m.id, Role.MEMBER, 2)
    assert not await ports.conversations.add_member(conv.id, m.id, Role.MEMBER, 3)
    assert await ports.conversations.set_read(conv.id, m.id, 5) == 5
    assert await ports.conversations.set_read(conv.id, m.id, 3) == 5
    got = await ports.conversations.get(conv.id)
    assert got is not None
    member = got.member(m.id)
    assert member is not None
    assert member.read_seq == 5
    assert [c.id for c in await ports.conversations.list_for_user(m.id)] == [conv.id]
    assert await ports.conversations.remove_member(conv.id, m.id)
    assert not await ports.conversations.remove_member(conv.id, m.id)
    assert not await ports.conversations.is_member(conv.id, m.id)
    assert await ports.conversations.get(_id("c")) is None


# -- sessions, presence, limits, bus ---------------------------------------------------------


async def test_session_rotation_and_reuse_detection(ports: Ports) -> None:
    fam, user = _id("f"), _id("u")
    await ports.sessions.create(fam, user, "h1", 60)
    assert await ports.sessions.is_active(fam)
    ok = await ports.sessions.rotate(fam, "h1", "h2", 60)
    assert ok.user_id == user
    assert not ok.reused
    reused = await ports.sessions.rotate(fam, "h1", "h3", 60)
    assert reused.reused
    assert not await ports.sessions.is_active(fam)
    after = await ports.sessions.rotate(fam, "h2", "h4", 60)
    assert after.user_id is None
    unknown = await ports.sessions.rotate(_id("f"), "x", "y", 60)
    assert unknown.user_id is None
    assert not unknown.reused


async def test_revoke_user_ends_every_family(ports: Ports) -> None:
    user = _id("u")
    fams = [_id("f") for _ in range(3)]
    for f in fams:
        await ports.sessions.create(f, user, f"h-{f}", 60)
    assert sorted(await ports.sessions.revoke_user(user)) == sorted(fams)
    assert not any([await ports.sessions.is_active(f) for f in fams])


async def test_a_refresh_keeps_the_state_the_client_set(ports: Ports) -> None:
    """The gateway's periodic heartbeat passes no state: an `idle` stays idle (it used to be
    reset to online every heartbeat interval), and the connection's life is extended."""
    user = _id("u")
    await ports.presence.connect(user, "c1", 30)
    await ports.presence.heartbeat(user, "c1", PresenceState.IDLE, 30)
    await ports.presence.heartbeat(user, "c1", None, 30)
    assert (await ports.presence.get([user]))[user].state is PresenceState.IDLE
    await ports.presence.heartbeat(user, "c1", PresenceState.ONLINE, 30)
    await ports.presence.heartbeat(user, "c1", None, 30)
    assert (await ports.presence.get([user]))[user].state is PresenceState.ONLINE
    # A refresh of a connection the store no longer holds (it outlived its TTL): online again,
    # and it expires on its own like any other.
    other = _id("u")
    await ports.presence.heartbeat(other, "c9", None, 1)
    assert (await ports.presence.get([other]))[other].state is PresenceState.ONLINE
    deadline = time.monotonic() + 10
    while (await ports.presence.get([other]))[other].state is not PresenceState.OFFLINE:
        assert time.monotonic() < deadline, "a refreshed connection never expired"
        await asyncio.sleep(0.1)


async def test_presence_counts_states_and_expiry(ports: Ports) -> None:
    user = _id("u")
    assert (await ports.presence.get([user]))[user].state is PresenceState.OFFLINE
    assert await ports.presence.connect(user, "c1", 30) == 1
    assert await ports.presence.connect(user, "c2", 30) == 2
    await ports.presence.heartbeat(user, "c1", PresenceState.IDLE, 30)
    await ports.presence.heartbeat(user, "c2", PresenceState.IDLE, 30)
    assert (await ports.presence.get([user]))[user].state is PresenceState.IDLE
    assert await ports.presence.disconnect(user, "c1") == 1
    assert await ports.presence.disconnect(user, "c2") == 0
    gone = (await ports.presence.get([user]))[user]
    assert gone.state is PresenceState.OFFLINE
    assert gone.last_seen is not None
    # A connection that stops heartbeating (a crashed gateway) expires by itself.
    crashed = _id("u")
    await ports.presence.connect(crashed, "c", 1)
    assert (await ports.presence.get([crashed]))[crashed].state is PresenceState.ONLINE
    deadline = time.monotonic() + 5
    while (await ports.presence.get([crashed]))[crashed].state is not PresenceState.OFFLINE:
        assert time.monotonic() < deadline, "presence never expired"
        await asyncio.sleep(0.1)


async def test_rate_limiter_token_bucket(ports: Ports) -> None:
    key = _id("k")
    waits = [await ports.limiter.allow(key, 1.0, 3) for _ in range(4)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert 0 < waits[3] <= 1.0
    assert await ports.limiter.allow(_id("k"), 1.0, 3) == 0.0


async def test_bus_routes_only_subscribed_channels(ports: Ports) -> None:
    a, b = Collector(), Collector()
    sa, sb = await ports.bus.open(a), await ports.bus.open(b)
    ch1, ch2 = f"test:{{{_id('x')}}}", f"test:{{{_id('x')}}}"
    await sa.subscribe([ch1, ch2])
    await sb.subscribe([ch2])
    await ports.bus.publish(ch1, b"one")
    await ports.bus.publish(ch2, b"two")
    await eventually(lambda: len(a.got) == 2 and len(b.got) == 1)
    assert b.got == [(ch2, b"two")]
    await sa.unsubscribe([ch1])
    await ports.bus.publish(ch1, b"ignored")
    await ports.bus.publish(ch2, b"three")
    await eventually(lambda: len(b.got) == 2)
    await eventually(lambda: len(a.got) == 3)
    assert [p for _, p in a.got] == [b"one", b"two", b"three"]
    await sa.close()
    await sb.close()


async def test_linked_identities(ports: Ports) -> None:
    issuer, subject = "https://idp.example", _id("sub")
    assert await ports.accounts.user_by_identity(issuer, subject) is None
    user = _user()
    await ports.accounts.create_linked_user(user, issuer, subject)
    assert await ports.accounts.user_by_identity(issuer, subject) == user
    with pytest.raises(Conflict) as same_identity:
        await ports.accounts.create_linked_user(_user(), issuer, subject)
    assert same_identity.value.code == "identity_taken"
    with pytest.raises(Conflict) as same_name:
        await ports.accounts.create_linked_user(_user(user.username), issuer, _id("sub"))
    assert same_name.value.code == "username_taken"
    creds = await ports.accounts.credentials_by_username(user.username)
    assert creds is not None
    assert creds.password_hash.startswith("!")  # no password can verify against it
