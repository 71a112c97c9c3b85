"""Search folds case the Unicode way on every backend: `REUNIÃO` finds `reunião` in message
search (SQLite's LIKE folds only ASCII), and people search matches name prefixes the same way."""

from __future__ import annotations

import secrets

import pytest

from chat.domain.chat import Ports
from chat.domain.models import EventDraft, EventKind, User


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


async def _user(ports: Ports, username: str, display_name: str, disabled: bool = False) -> User:
    user = User(_id("u"), username, display_name, 1, disabled, False)
    await ports.accounts.create_user(user, "hash")
    return user


async def test_people_search_by_username_and_display_name_prefix(ports: Ports) -> None:
    tag = secrets.token_hex(3)
    ana = await _user(ports, f"ana{tag}", "Ana Souza")
    anabel = await _user(ports, f"anabel{tag}", "Anabel")
    joao = await _user(ports, f"jo{tag}", f"João Ávila {tag}")
    await _user(ports, f"anagone{tag}", "Gone", disabled=True)
    await _user(ports, f"x{tag}ana", "Not a prefix")

    by_username = await ports.accounts.search_users(f"ANA{tag}", 10)
    assert [u.username for u in by_username] == [f"ana{tag}"]
    assert by_username[0] == ana
    by_short = await ports.accounts.search_users(f"ana{tag[:0]}", 50)
    assert {ana.id, anabel.id} <= {u.id for u in by_short}
    # A word of the display name, any case, accents folded the Unicode way.
    by_word = await ports.accounts.search_users(f"ÁVILA {tag}", 10)
    assert [u.id for u in by_word] == [joao.id]
    by_accent = await ports.accounts.search_users(f"joão ávila {tag}", 10)
    assert [u.id for u in by_accent] == [joao.id]
    # Literal: pattern characters match nothing special; the limit holds; disabled are hidden.
    assert await ports.accounts.search_users("%", 10) == []
    assert await ports.accounts.search_users("_", 10) == []
    assert len(await ports.accounts.search_users("a", 2)) <= 2
    assert all(not u.disabled for u in await ports.accounts.search_users(f"anagone{tag}", 10))
    assert await ports.accounts.search_users(f"anagone{tag}", 10) == []
