"""Embedded mode: SQLite for accounts and messages, an in-process bus, presence and limits in
memory. One process, no servers — the way Centrifugo's memory engine or Synapse's SQLite mode
let you try the product in a minute."""

from __future__ import annotations

from dataclasses import dataclass

from chat.config import Settings
from chat.domain.chat import Ports
from chat.domain.clock import Clock, system_clock
from chat.domain.ports import JobQueue
from chat.stores.embedded.accounts import SqliteAccountStore
from chat.stores.embedded.archive import SqliteArchive
from chat.stores.embedded.bus import MemoryBus
from chat.stores.embedded.conversations import SqliteConversationStore
from chat.stores.embedded.db import Database
from chat.stores.embedded.event_log import SqliteEventLog
from chat.stores.embedded.presence import MemoryPresence
from chat.stores.embedded.ratelimit import MemoryRateLimiter
from chat.stores.embedded.sessions import SqliteSessionStore


@dataclass
class EmbeddedPorts:
    ports: Ports
    _databases: tuple[Database, ...]

    async def close(self) -> None:
        for db in self._databases:
            await db.close()


async def open_embedded_ports(
    settings: Settings, queue: JobQueue, clock: Clock = system_clock
) -> EmbeddedPorts:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    accounts_db = await Database.open(settings.data_dir / "accounts.db")
    messages_db = await Database.open(settings.data_dir / "messages.db")
    bus = MemoryBus()
    limiter = MemoryRateLimiter(clock)  # one set of buckets: the log charges sends from it
    ports = Ports(
        accounts=SqliteAccountStore(accounts_db),
        conversations=SqliteConversationStore(accounts_db),
        log=SqliteEventLog(messages_db, bus, clock, limiter),
        archive=SqliteArchive(messages_db),
        bus=bus,
        sessions=SqliteSessionStore(accounts_db, clock),
        presence=MemoryPresence(clock),
        limiter=limiter,
        queue=queue,
    )
    return EmbeddedPorts(ports, (accounts_db, messages_db))
