"""The domain's single entry point: every service, wired to one set of ports."""

from __future__ import annotations

from dataclasses import dataclass

from chat.domain.accounts import AccountService
from chat.domain.clock import Clock
from chat.domain.conversations import ConversationService
from chat.domain.limits import Limits
from chat.domain.membership import MembershipCache
from chat.domain.messaging import MessagingService
from chat.domain.passwords import PasswordHasher
from chat.domain.ports import (
    AccountStore,
    Bus,
    ConversationStore,
    EventLog,
    JobQueue,
    MessageArchive,
    PresenceStore,
    RateLimiter,
    SessionStore,
)
from chat.domain.presence import PresenceService
from chat.domain.tokens import TokenIssuer


@dataclass(frozen=True, slots=True)
class Ports:
    """One implementation of every port: embedded or cluster."""

    accounts: AccountStore
    conversations: ConversationStore
    log: EventLog
    archive: MessageArchive
    bus: Bus
    sessions: SessionStore
    presence: PresenceStore
    limiter: RateLimiter
    queue: JobQueue


@dataclass(frozen=True, slots=True)
class Chat:
    ports: Ports
    limits: Limits
    accounts: AccountService
    conversations: ConversationService
    messaging: MessagingService
    presence: PresenceService


def messaging_service(
    ports: Ports,
    limits: Limits,
    membership: MembershipCache | None = None,
    *,
    search_catches_up: bool = False,
) -> MessagingService:
    return MessagingService(
        ports.conversations,
        ports.log,
        ports.archive,
        ports.bus,
        ports.queue,
        ports.limiter,
        limits,
        membership,
        search_catches_up=search_catches_up,
    )


def build_chat(
    ports: Ports,
    *,
    limits: Limits,
    tokens: TokenIssuer,
    hasher: PasswordHasher,
    clock: Clock,
    refresh_ttl_s: int,
    admins: frozenset[str],
    membership: MembershipCache | None = None,
    search_catches_up: bool = False,
) -> Chat:
    """`search_catches_up`: a search first archives what the log holds past the archive for
    the conversations it searches (`Persister.catch_up`); for one process that holds both."""
    messaging = messaging_service(ports, limits, membership, search_catches_up=search_catches_up)
    return Chat(
        ports=ports,
        limits=limits,
        accounts=AccountService(
            ports.accounts,
            ports.sessions,
            ports.bus,
            hasher,
            tokens,
            clock,
            refresh_ttl_s=refresh_ttl_s,
            admins=admins,
            limiter=ports.limiter,
            limits=limits,
        ),
        conversations=ConversationService(
            ports.accounts, ports.conversations, messaging, ports.bus, clock, limits
        ),
        messaging=messaging,
        presence=PresenceService(ports.presence, ports.conversations, ports.bus, limits),
    )
