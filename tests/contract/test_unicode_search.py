"""Search folds case the Unicode way on every backend: `REUNIÃO` finds `reunião` in message
search (SQLite's LIKE folds only ASCII), and people search matches name prefixes the same way."""

from __future__ import annotations

import secrets

import pytest

from chat.domain.chat import Ports
from chat.domain.models import EventDraft, EventKind


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(6)}"


async def _archive_messages(ports: Ports, cid: str, *bodies: str) -> None:
    for body in bodies:
        appended = await ports.log.append(EventDraft(cid, EventKind.MESSAGE, "u", _id("m"), body))
        await ports.archive.apply([appended.event])


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("REUNIÃO", ["a reunião é às 10h"]),
        ("reunião", ["a reunião é às 10h"]),
        ("ärger", ["ÄRGER im Büro"]),
        ("ΣΟΦΊΑ", ["η σοφία"]),
        ("ÇA", ["ça va"]),
        ("100%", ["100% sure"]),  # literal, not a pattern
        ("a.c", []),
    ],
)
async def test_message_search_folds_unicode_case(
    ports: Ports, query: str, expected: list[str]
) -> None:
    cid = _id("c")
    await _archive_messages(
        ports, cid, "a reunião é às 10h", "ÄRGER im Büro", "η σοφία", "ça va", "100% sure", "abc"
    )
    found = await ports.archive.search([cid], query, 10)
    assert [m.body for m in found] == expected
