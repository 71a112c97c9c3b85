"""Presence (online, idle, offline, last seen), told only to people who share a conversation."""

from __future__ import annotations

from chat.domain.accounts import Principal
from chat.domain.channels import conversation_channel
from chat.domain.errors import InvalidRequest, RateLimited
from chat.domain.frames import encode
from chat.domain.limits import Limits
from chat.domain.models import Presence, PresenceState
from chat.domain.ports import Bus, ConversationStore, PresenceStore


class PresenceService:
    def __init__(
        self,
        store: PresenceStore,
        conversations: ConversationStore,
        bus: Bus,
        limits: Limits,
    ) -> None:
        self._store = store
        self._conversations = conversations
        self._bus = bus
        self._limits = limits

    async def connect(self, who: Principal, connection_id: str) -> None:
        count = await self._store.connect(
            who.user.id, connection_id, self._limits.presence_connection_ttl_s
        )
        if count > self._limits.max_connections_per_user:
            await self._store.disconnect(who.user.id, connection_id)
            raise RateLimited(
                f"at most {self._limits.max_connections_per_user} connections per user",
                code="too_many_connections",
            )
        if count == 1:
            await self._announce(who.user.id, PresenceState.ONLINE)

    async def heartbeat(
        self, who: Principal, connection_id: str, state: PresenceState | None = None
    ) -> None:
        """The connection's periodic refresh (no `state`: an `idle` the client set stays idle),
        every `Limits.presence_refresh_s`, or a `presence` frame's new state."""
        await self._store.heartbeat(
            who.user.id, connection_id, state, self._limits.presence_connection_ttl_s
        )

    async def renew(self) -> None:
        """The gateway process's heartbeat: its connections stay live `presence_ttl_s` more."""
        await self._store.renew(self._limits.presence_ttl_s)

    async def release(self) -> None:
        """The gateway process has drained: what it still holds counts as gone."""
        await self._store.release()

    async def set_state(self, who: Principal, connection_id: str, state: object) -> None:
        if state not in (PresenceState.ONLINE.value, PresenceState.IDLE.value):
            raise InvalidRequest("state must be 'online' or 'idle'", code="invalid_request")
        parsed = PresenceState(str(state))
        await self.heartbeat(who, connection_id, parsed)
        await self._announce(who.user.id, parsed)

    async def disconnect(self, who: Principal, connection_id: str) -> None:
        remaining = await self._store.disconnect(who.user.id, connection_id)
        if remaining == 0:
            await self._announce(who.user.id, PresenceState.OFFLINE)

    async def of_contacts(self, who: Principal) -> list[Presence]:
        contacts: set[str] = set()
        for conversation in await self._conversations.list_for_user(who.user.id):
            contacts.update(m.user_id for m in conversation.members)
        found = await self._store.get(sorted(contacts))
        return [found[uid] for uid in sorted(found)]

    async def _announce(self, user_id: str, state: PresenceState) -> None:
        current = (await self._store.get([user_id]))[user_id]
        frame = encode(
            {
                "type": "presence",
                "user_id": user_id,
                "state": state.value,
                "last_seen": current.last_seen,
            }
        )
        for cid in await self._conversations.conversation_ids_for_user(user_id):
            await self._bus.publish(conversation_channel(cid), frame)
