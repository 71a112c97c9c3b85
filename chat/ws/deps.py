"""What the gateway needs from the rest of the process, and nothing more.

The gateway is handed this object (`Gateway(deps)`) instead of the whole runtime: the narrow
slice of the chat services it calls, its limits and metrics, the Origin rule, and how to tell
that the process is draining. The services are typed as protocols of exactly the calls the
gateway makes, so the domain's services satisfy them as they are and a unit test can hand in
small in-memory fakes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from chat.domain.accounts import Principal
from chat.domain.limits import Limits
from chat.domain.membership import MembershipCache
from chat.domain.messaging import Replay
from chat.domain.models import AppendResult
from chat.domain.ports import Bus
from chat.metrics import Metrics


class Accounts(Protocol):
    async def authenticate(self, access_token: object) -> Principal: ...


class Presence(Protocol):
    async def connect(self, who: Principal, connection_id: str) -> None: ...

    async def disconnect(self, who: Principal, connection_id: str) -> None: ...

    async def heartbeat(self, who: Principal, connection_id: str) -> None: ...

    async def set_state(self, who: Principal, connection_id: str, state: object) -> None: ...

    async def renew(self) -> None:
        """The process's lease: its connections stay live while it is renewed."""
        ...

    async def release(self) -> None: ...


class Messaging(Protocol):
    """Positional-only: the gateway passes the frame's fields in order, unvalidated (`object`);
    the service validates them."""

    async def send(
        self, who: Principal, cid: object, client_id: object, body: object, /
    ) -> AppendResult: ...

    async def edit(
        self, who: Principal, cid: object, seq: object, client_id: object, body: object, /
    ) -> AppendResult: ...

    async def delete(
        self, who: Principal, cid: object, seq: object, client_id: object, /
    ) -> AppendResult: ...

    async def read_up_to(self, who: Principal, cid: object, seq: object, /) -> int: ...

    async def typing(self, who: Principal, cid: object, /) -> None: ...

    async def replay(self, cid: str, after_seq: int, /) -> Replay: ...

    async def last_seq(self, cid: str, /) -> int: ...


class Conversations(Protocol):
    """The one lookup the gateway makes itself: which conversations to subscribe a socket to."""

    async def conversation_ids_for_user(self, user_id: str) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class GatewayDeps:
    accounts: Accounts
    presence: Presence
    messaging: Messaging
    conversations: Conversations
    bus: Bus
    """One subscription per process (`Gateway.start`), fanned out to the local sockets."""
    limits: Limits
    metrics: Metrics
    origins: frozenset[str]
    """Origins a browser may open a socket from (`CHAT_ALLOWED_ORIGINS`, else the own origin)."""
    origins_exclusive: bool
    """True when `CHAT_ALLOWED_ORIGINS` is set: the list is then the whole rule, and Tornado's
    own same-host shortcuts are not taken (see `GatewayHandler.get`)."""
    drain_timeout_s: float
    """How long `Gateway.drain` waits for clients to go after asking them to (1012)."""
    draining: Callable[[], bool]
    """True once the process drains (SIGTERM): periodic work stops rescheduling itself."""
    membership: MembershipCache = field(default_factory=MembershipCache)
    """The one `messaging` checks first: the gateway says whose answers it may keep (users with
    a socket here) and drops them on `left`/`joined`/`close` and bus gaps (membership.py)."""
