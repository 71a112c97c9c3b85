"""Presence in memory, with expiry driven by an injectable clock. No leases: the connections
live in the one process that holds them, and go with it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chat.domain.clock import Clock, now_ms
from chat.domain.models import Presence, PresenceState


@dataclass
class _Connection:
    expires_at: float
    state: PresenceState


class MemoryPresence:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._connections: dict[str, dict[str, _Connection]] = {}
        self._last_seen: dict[str, int] = {}

    def _live(self, user_id: str) -> dict[str, _Connection]:
        now = self._clock()
        conns = self._connections.get(user_id, {})
        for cid in [c for c, conn in conns.items() if conn.expires_at <= now]:
            self._last_seen[user_id] = max(
                self._last_seen.get(user_id, 0), int(conns[cid].expires_at * 1000)
            )
            del conns[cid]
        return conns

    async def connect(self, user_id: str, connection_id: str, ttl_s: float) -> int:
        conns = self._live(user_id)
        conns[connection_id] = _Connection(self._clock() + ttl_s, PresenceState.ONLINE)
        self._connections[user_id] = conns
        self._last_seen[user_id] = now_ms(self._clock)
        return len(conns)

    async def heartbeat(
        self, user_id: str, connection_id: str, state: PresenceState | None, ttl_s: float
    ) -> None:
        conns = self._live(user_id)
        if state is None:
            held = conns.get(connection_id)
            state = held.state if held is not None else PresenceState.ONLINE
        conns[connection_id] = _Connection(self._clock() + ttl_s, state)
        self._connections[user_id] = conns
        self._last_seen[user_id] = now_ms(self._clock)

    async def disconnect(self, user_id: str, connection_id: str) -> int:
        conns = self._live(user_id)
        if conns.pop(connection_id, None) is not None:
            self._last_seen[user_id] = now_ms(self._clock)
        if not conns:
            self._connections.pop(user_id, None)
        return len(conns)

    async def get(self, user_ids: Sequence[str]) -> dict[str, Presence]:
        found = {}
        for uid in user_ids:
            conns = self._live(uid)
            if not conns:
                state = PresenceState.OFFLINE
            elif any(c.state is PresenceState.ONLINE for c in conns.values()):
                state = PresenceState.ONLINE
            else:
                state = PresenceState.IDLE
            found[uid] = Presence(uid, state, self._last_seen.get(uid))
        return found

    async def renew(self, ttl_s: float) -> None:
        return None

    async def release(self) -> None:
        return None
