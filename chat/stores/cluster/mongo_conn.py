"""The PyMongo async client (Motor reached end of life), and how its failures are reported."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.errors import ConnectionFailure, PyMongoError

from chat.stores.cluster.errors import redact, translated, unavailable

# ConnectionFailure covers AutoReconnect, NetworkTimeout and ServerSelectionTimeoutError: the
# server is down or unreachable, and the same call may succeed later.
MONGO_ERRORS: tuple[type[BaseException], ...] = (ConnectionFailure,)

SERVER_SELECTION_TIMEOUT_MS = 5000
"""How long a call waits for a reachable server before failing as unavailable (PyMongo's 30 s
default would hold a request or a worker that long during an outage). A URI option wins."""
CONNECT_TIMEOUT_MS = 5000


@contextmanager
def mongo_errors() -> Iterator[None]:
    with translated("MongoDB", MONGO_ERRORS):
        yield


def make_client(uri: str) -> AsyncMongoClient[dict[str, Any]]:
    options: dict[str, Any] = {}
    lowered = uri.lower()
    if "serverselectiontimeoutms" not in lowered:
        options["serverSelectionTimeoutMS"] = SERVER_SELECTION_TIMEOUT_MS
    if "connecttimeoutms" not in lowered:
        options["connectTimeoutMS"] = CONNECT_TIMEOUT_MS
    return AsyncMongoClient(uri, **options)


async def connect_mongo(uri: str) -> AsyncMongoClient[dict[str, Any]]:
    """A client whose server answered `ping`; fails fast with an error naming MongoDB."""
    client = make_client(uri)
    try:
        await client.admin.command("ping")
    except PyMongoError as exc:
        await client.close()
        raise unavailable("MongoDB", exc, redact(uri)) from exc
    return client
