"""Membership checks without a database query per send: a per-process memory of "this user is a
member of this conversation", kept only while the process hears about removals.

Every send, edit, delete, read and typing frame checks membership. Asking PostgreSQL each time
was 7 % of a gateway's samples; a gateway can instead remember a positive answer for as long as
it is subscribed to the user's bus channel, because a removal always publishes a `left` control
frame there (`ConversationService.remove_member`, after the database commit) and a logout or a
disabled account a `close` one.

The rules that keep it correct (the gateway keeps them, chat/ws/):
- Only "member" is remembered, never "not a member": a user just added is let in at once.
- Only for users the gateway `watch`es: it does so once the user's channel is subscribed, and
  `unwatch`es when that user's last socket here is gone. A process with no gateway (the HTTP
  API) watches nobody, so it asks the database every time.
- A `left`, `joined` or `close` frame on the user's channel drops the user's entries (`forget`,
  `forget_user`) when the frame arrives, before the session serves any later frame.
- When the bus connection is lost, everything is dropped and nothing is remembered until the
  bus has resubscribed and reported the reset (`suspend`, then `clear`): a `left` published in
  between may never arrive.
- A database answer that was under way while any of the above happened is not remembered
  (`version`): it may predate the removal it raced with.
- An entry is trusted for at most `max_age_s` (default 10 s), whatever the bus says: the bound
  if a `left` is lost anyway (its publish failed after the commit).

Staleness bound: a removed member's sends are refused once the `left` frame reaches this
process (one pub/sub hop after the removal's commit, as for the unsubscription that stops their
deliveries), and in any case within `max_age_s` of the entry being filled. A frame whose check
passed before that may still be appended, as without the cache. A user's second socket is
watched only once the user channel's SUBSCRIBE is confirmed, also when the first socket's is
still on its way (`Gateway.join` waits for it), so no `left` can go unheard in between.

Not filled from the conversation list at auth, only on use: an idle socket costs no entries
(idle memory per socket is a tracked figure, docs/performance.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from chat.domain.ports import ConversationStore

DEFAULT_MAX_AGE_S = 10.0
"""How long a remembered answer is trusted even when no `left` came: one database query per
(conversation, user) per 10 s costs nothing, and it bounds the damage of a lost publish."""
DEFAULT_MAX_PAIRS = 200_000
"""Memory bound (about 150 bytes a pair): past it everything is forgotten and refilled on use."""


class MembershipCache:
    """Pure bookkeeping, no I/O; driven by `MembershipCheck` (fill) and the gateway (the rest).
    Runs on one event loop: no locking."""

    def __init__(
        self,
        *,
        max_age_s: float = DEFAULT_MAX_AGE_S,
        max_pairs: int = DEFAULT_MAX_PAIRS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_age_s = max_age_s
        self._max_pairs = max_pairs
        self._clock = clock
        self._watched: dict[str, int] = {}  # user -> sockets here that subscribed to its channel
        self._pairs: dict[str, dict[str, float]] = {}  # user -> {conversation: filled at}
        self._size = 0
        self._listening = True  # False from a lost bus connection until its reset
        self.version = 0
        """Bumped by every invalidation: a fill whose query started before it is refused."""

    def __len__(self) -> int:
        return self._size

    def watch(self, user_id: str) -> None:
        """A socket of this user subscribed to the user's channel here."""
        self._watched[user_id] = self._watched.get(user_id, 0) + 1

    def unwatch(self, user_id: str) -> None:
        """One of its sockets is gone; with the last one, its channel may be unsubscribed."""
        left = self._watched.get(user_id, 0) - 1
        if left > 0:
            self._watched[user_id] = left
            return
        self._watched.pop(user_id, None)
        self.forget_user(user_id)

    def known(self, conversation_id: str, user_id: str) -> bool:
        """True: a member, as far as this process can tell. False: ask the database."""
        convs = self._pairs.get(user_id)
        filled = convs.get(conversation_id) if convs else None
        if filled is None:
            return False
        if self._clock() - filled > self.max_age_s:
            self._drop(user_id, conversation_id)
            return False
        return True

    def remember(self, conversation_id: str, user_id: str, version: int) -> None:
        """The database said "member" to a query started at `version`."""
        if version != self.version or not self._listening or user_id not in self._watched:
            return
        if self._size >= self._max_pairs:
            self.clear()
            return
        convs = self._pairs.setdefault(user_id, {})
        if conversation_id not in convs:
            self._size += 1
        convs[conversation_id] = self._clock()

    def forget(self, conversation_id: str, user_id: str) -> None:
        """A membership event for this pair (`left`, `joined`)."""
        self.version += 1
        self._drop(user_id, conversation_id)

    def forget_user(self, user_id: str) -> None:
        """A `close` for this user, or its last socket here went."""
        self.version += 1
        self._size -= len(self._pairs.pop(user_id, {}))

    def clear(self) -> None:
        """The bus resubscribed after a gap (`on_reset`): it hears removals again, but the ones
        published meanwhile are lost."""
        self.version += 1
        self._pairs.clear()
        self._size = 0
        self._listening = True

    def suspend(self) -> None:
        """The bus connection was lost: nothing is known, nor learnt, until `clear`."""
        self.clear()
        self._listening = False

    def _drop(self, user_id: str, conversation_id: str) -> None:
        convs = self._pairs.get(user_id)
        if convs is not None and convs.pop(conversation_id, None) is not None:
            self._size -= 1
            if not convs:
                del self._pairs[user_id]


class MembershipCheck:
    """`is_member` answered from the cache when it can, else by the store (filling the cache)."""

    def __init__(self, store: ConversationStore, cache: MembershipCache | None = None) -> None:
        self._store = store
        self._cache = cache

    async def is_member(self, conversation_id: str, user_id: str) -> bool:
        cache = self._cache
        if cache is None:
            return await self._store.is_member(conversation_id, user_id)
        if cache.known(conversation_id, user_id):
            return True
        version = cache.version
        member = await self._store.is_member(conversation_id, user_id)
        if member:
            cache.remember(conversation_id, user_id, version)
        return member
