"""How PostgreSQL driver failures reach clients: as `dependency_unavailable` (retriable) when
the server cannot be used, never as an internal error."""

from __future__ import annotations

import asyncpg  # type: ignore[import-untyped]
import pytest

from chat.domain.errors import Unavailable
from chat.stores.cluster.postgres_pool import postgres_errors


@pytest.mark.parametrize(
    "exc",
    [
        # A pod still holding the old password during a rotation opens a new pooled
        # connection (found on the real node: the client got `internal`).
        asyncpg.exceptions.InvalidPasswordError("password authentication failed"),
        asyncpg.exceptions.InvalidAuthorizationSpecificationError("role may not log in"),
        ConnectionRefusedError(111, "Connection refused"),
    ],
)
def test_connection_and_login_failures_are_dependency_unavailable(exc: Exception) -> None:
    with pytest.raises(Unavailable) as raised, postgres_errors("postgresql://chat:pw@db/chat"):
        raise exc
    assert raised.value.code == "dependency_unavailable"
    assert "pw" not in raised.value.message  # the DSN is redacted
