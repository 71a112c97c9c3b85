"""The asyncpg pool the PostgreSQL stores share, and how its failures are reported."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg  # type: ignore[import-untyped]  # no stubs; see docs/cluster.md

from chat.domain.errors import InvalidRequest
from chat.stores.cluster.errors import redact, translated, unavailable

POSTGRES_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.InterfaceError,
    # A new pooled connection refused at login (SQLSTATE 28xxx: wrong password, role may not
    # log in): while credentials rotate, pods started with the old Secret meet this on every
    # connection they open. It is a dependency problem the client retries, not a bug.
    asyncpg.exceptions.InvalidAuthorizationSpecificationError,
)

POOL_MIN = 1
POOL_MAX = 10
"""Connections per process. PostgreSQL's default max_connections is 100: 10 per pod leaves room
for several API, gateway and worker pods."""
CONNECT_TIMEOUT_S = 5.0
COMMAND_TIMEOUT_S = 30.0
"""Every query here is an indexed lookup or a small write; 30 s means a sick server."""


# PostgreSQL text cannot hold U+0000 (SQLite and MongoDB can): a NUL in an id, a name or a
# title is the client's error, answered 400 on this backend instead of a 500.
_UNSTORABLE_TEXT = (
    asyncpg.exceptions.CharacterNotInRepertoireError,
    asyncpg.exceptions.UntranslatableCharacterError,
)


@contextmanager
def postgres_errors(dsn: str = "") -> Iterator[None]:
    try:
        with translated("PostgreSQL", POSTGRES_ERRORS, redact(dsn) if dsn else ""):
            yield
    except _UNSTORABLE_TEXT as exc:
        raise InvalidRequest(
            "text must not contain the NUL character (U+0000)", code="invalid_request"
        ) from exc


async def create_pool(dsn: str) -> asyncpg.Pool:
    try:
        pool = await asyncpg.create_pool(
            dsn,
            min_size=POOL_MIN,
            max_size=POOL_MAX,
            timeout=CONNECT_TIMEOUT_S,
            command_timeout=COMMAND_TIMEOUT_S,
        )
    except POSTGRES_ERRORS as exc:
        raise unavailable("PostgreSQL", exc, redact(dsn)) from exc
    except asyncpg.exceptions.InvalidCatalogNameError as exc:
        raise unavailable("PostgreSQL", exc, redact(dsn)) from exc
    assert pool is not None
    return pool
