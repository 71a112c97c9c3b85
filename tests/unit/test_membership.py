"""The per-gateway membership cache (chat/domain/membership.py) and MessagingService with it:
a watched member's repeated sends ask the store once; a removal (`forget`), a lost bus
connection (`suspend`), a reset (`clear`) or the last socket going (`unwatch`) send the next
check back to the store; "not a member" is never remembered; a store answer that raced with an
invalidation is not remembered."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat.domain.errors import Forbidden
from chat.domain.limits import Limits
from chat.domain.membership import MembershipCache, MembershipCheck
from chat.domain.messaging import MessagingService
from tests.unit.support.messaging import (
    CID,
    Members,
    MemoryArchive,
    MemoryLog,
    Published,
    Unlimited,
    principal,
)


class CountingMembers(Members):
    """The store fake, counting `is_member` queries; `gate` holds a query until it is set."""

    def __init__(self, members: dict[str, set[str]]) -> None:
        super().__init__(members)
        self.queries = 0
        self.gate: asyncio.Event | None = None

    async def is_member(self, conversation_id: str, user_id: str) -> bool:
        self.queries += 1
        answer = await super().is_member(conversation_id, user_id)
        if self.gate is not None:
            await self.gate.wait()
        return answer


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def service(
    store: CountingMembers, cache: MembershipCache | None
) -> tuple[MessagingService, Published]:
    published = Published()
    svc = MessagingService(
        store, MemoryLog(), MemoryArchive(), published, published, Unlimited(), Limits(), cache
    )
    return svc, published


async def test_repeated_sends_of_a_watched_member_query_the_store_once() -> None:
    store = CountingMembers({CID: {"alice"}})
    cache = MembershipCache()
    cache.watch("alice")
    svc, _ = service(store, cache)
    for i in range(5):
        await svc.send(principal("alice"), CID, f"m{i}", "hi")
    await svc.read_up_to(principal("alice"), CID, 1)
    await svc.typing(principal("alice"), CID)
    assert store.queries == 1


async def test_without_a_cache_or_unwatched_every_send_queries_the_store() -> None:
    """The HTTP API's processes (no cache) and users with no socket here (not watched)."""
    for cache in (None, MembershipCache()):
        store = CountingMembers({CID: {"alice"}})
        svc, _ = service(store, cache)
        for i in range(3):
            await svc.send(principal("alice"), CID, f"m{i}", "hi")
        assert store.queries == 3


async def test_removal_is_seen_on_the_next_send_after_forget() -> None:
    store = CountingMembers({CID: {"alice"}})
    cache = MembershipCache()
    cache.watch("alice")
    svc, _ = service(store, cache)
    await svc.send(principal("alice"), CID, "m1", "hi")
    store.members[CID].discard("alice")  # removed in the database...
    await svc.send(principal("alice"), CID, "m2", "still cached")  # ...`left` not here yet
    cache.forget(CID, "alice")  # the `left` control frame arrived
    with pytest.raises(Forbidden) as refused:
        await svc.send(principal("alice"), CID, "m3", "refused")
    assert refused.value.code == "not_member"
    assert store.queries == 2


@pytest.mark.parametrize("invalidate", ["forget_user", "clear", "suspend", "unwatch"])
async def test_every_invalidation_sends_the_next_check_to_the_store(invalidate: str) -> None:
    store = CountingMembers({CID: {"alice"}})
    cache = MembershipCache()
    cache.watch("alice")
    svc, _ = service(store, cache)
    await svc.send(principal("alice"), CID, "m1", "hi")
    store.members[CID].discard("alice")
    if invalidate == "unwatch":
        cache.unwatch("alice")
    elif invalidate == "forget_user":
        cache.forget_user("alice")
    else:
        getattr(cache, invalidate)()
    with pytest.raises(Forbidden):
        await svc.send(principal("alice"), CID, "m2", "refused")
    assert len(cache) == 0


async def test_not_a_member_is_never_remembered() -> None:
    store = CountingMembers({CID: set()})
    cache = MembershipCache()
    cache.watch("alice")
    svc, _ = service(store, cache)
    with pytest.raises(Forbidden):
        await svc.send(principal("alice"), CID, "m1", "no")
    store.members[CID].add("alice")  # added: let in at once, no `joined` needed
    await svc.send(principal("alice"), CID, "m2", "yes")
    assert store.queries == 2


async def test_a_store_answer_that_raced_with_a_removal_is_not_remembered() -> None:
    store = CountingMembers({CID: {"alice"}})
    store.gate = asyncio.Event()
    cache = MembershipCache()
    cache.watch("alice")
    check = MembershipCheck(store, cache)
    pending = asyncio.create_task(check.is_member(CID, "alice"))
    await asyncio.sleep(0)  # the query is under way (answered "member")
    cache.forget(CID, "alice")  # the `left` arrives before the answer
    store.gate.set()
    assert await pending
    assert not cache.known(CID, "alice")


def test_suspended_cache_learns_nothing_until_the_reset() -> None:
    cache = MembershipCache()
    cache.watch("alice")
    cache.suspend()
    cache.remember(CID, "alice", cache.version)
    assert not cache.known(CID, "alice")
    cache.clear()  # on_reset: resubscribed
    cache.remember(CID, "alice", cache.version)
    assert cache.known(CID, "alice")


def test_entries_expire_after_max_age() -> None:
    clock = Clock()
    cache = MembershipCache(max_age_s=10, clock=clock)
    cache.watch("alice")
    cache.remember(CID, "alice", cache.version)
    clock.now = 10.0
    assert cache.known(CID, "alice")
    clock.now = 10.5
    assert not cache.known(CID, "alice")
    assert len(cache) == 0


def test_watch_is_counted_per_socket() -> None:
    cache = MembershipCache()
    cache.watch("alice")
    cache.watch("alice")
    cache.remember(CID, "alice", cache.version)
    cache.unwatch("alice")  # one of two sockets went: the channel is still subscribed
    assert cache.known(CID, "alice")
    cache.unwatch("alice")
    assert not cache.known(CID, "alice")
    cache.remember(CID, "alice", cache.version)  # no socket here: nothing would tell us
    assert not cache.known(CID, "alice")


def test_size_is_bounded() -> None:
    cache = MembershipCache(max_pairs=3)
    cache.watch("alice")
    for i in range(10):
        cache.remember(f"c{i}", "alice", cache.version)
        assert len(cache) <= 3


ops = st.lists(
    st.tuples(
        st.sampled_from(
            ["remember", "forget", "forget_user", "clear", "suspend", "watch", "unwatch"]
        ),
        st.sampled_from(["c1", "c2"]),
        st.sampled_from(["u1", "u2"]),
    ),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(script=ops)
def test_known_only_after_a_remember_with_no_invalidation_since(
    script: list[tuple[str, str, str]],
) -> None:
    """Against a model: a pair is known iff it was remembered while its user was watched and
    the bus listening, and nothing since dropped it."""
    cache = MembershipCache()
    watched: dict[str, int] = {}
    listening = True
    model: set[tuple[str, str]] = set()
    for op, cid, uid in script:
        if op == "remember":
            cache.remember(cid, uid, cache.version)
            if watched.get(uid, 0) > 0 and listening:
                model.add((cid, uid))
        elif op == "forget":
            cache.forget(cid, uid)
            model.discard((cid, uid))
        elif op == "forget_user":
            cache.forget_user(uid)
            model = {p for p in model if p[1] != uid}
        elif op in ("clear", "suspend"):
            getattr(cache, op)()
            model.clear()
            listening = op == "clear"
        elif op == "watch":
            cache.watch(uid)
            watched[uid] = watched.get(uid, 0) + 1
        elif watched.get(uid, 0) > 0:  # unwatch, as the gateway calls it: once per watch
            cache.unwatch(uid)
            watched[uid] -= 1
            if watched[uid] == 0:
                model = {p for p in model if p[1] != uid}
        for c in ("c1", "c2"):
            for u in ("u1", "u2"):
                assert cache.known(c, u) == ((c, u) in model)
        assert len(cache) == len(model)
