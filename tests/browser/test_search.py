"""Message search in real Chromium: finds text in my conversations only, any case (Unicode
too), shows it as text with its author and a date in the user's own format, opens the
conversation at the hit (loading older history when it is far back) and highlights it, says
honestly when the result list is capped, and says so when nothing matches."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import Contexts, DevServer, login, unique_name
from tests.support.clients import Api

pytestmark = pytest.mark.browser


async def _search_until(page: Page, q: str, hits: int) -> None:
    """Search until the archive has caught up with the last sends (the worker persists them
    moments after they are acked); bounded."""
    await page.locator("#search-q").fill(q)
    for _ in range(30):
        await page.get_by_role("button", name="Search", exact=True).click()
        await expect(page.locator("#search-status")).not_to_have_text("Searching…")
        if await page.locator(".search-hit").count() == hits:
            return
        await page.wait_for_timeout(200)  # between polls of the archive, not synchronisation
    await expect(page.locator(".search-hit")).to_have_count(hits)


async def test_search_finds_my_messages_and_opens_the_conversation(
    chat_server: DevServer, contexts: Contexts, api: Api
) -> None:
    ana = await api.register(unique_name("ana"))
    bob = await api.register(unique_name("bob"))
    eve = await api.register(unique_name("eve"))
    word = unique_name("kumquat")
    cid = await api.dm(ana, bob)
    await api.send(bob, cid, f"bring the {word.upper()} <b>jam</b>")
    await api.send(bob, cid, "nothing to see")
    outsider = await api.dm(eve, bob)
    await api.send(eve, outsider, f"secret {word}")  # ana is not in this conversation

    page = await contexts.page(chat_server.url)
    await login(page, ana)
    await _search_until(page, word, 1)
    await expect(page.locator("#search-status")).to_have_text("1 found")
    hit = page.locator(".search-hit")
    await expect(hit.locator(".preview")).to_have_text(f"bring the {word.upper()} <b>jam</b>")
    await expect(hit.locator(".author")).to_have_text(bob.username)
    await hit.click()
    await expect(page.locator("#chat-title")).to_have_text(bob.username)
    await expect(page.locator(".messages b")).to_have_count(0)

    await page.locator("#search-q").fill("no-such-words-here")
    await page.get_by_role("button", name="Search", exact=True).click()
    await expect(page.locator("#search-status")).to_have_text(
        "No messages contain “no-such-words-here”."
    )
    await expect(page.locator(".search-hit")).to_have_count(0)
    assert contexts.dialogs == []
    assert contexts.errors == []


async def test_hit_far_back_is_loaded_scrolled_to_and_highlighted(
    chat_server: DevServer, contexts: Contexts, api: Api
) -> None:
    # Six people so 120 sends stay within each one's send burst.
    people = [await api.register(unique_name(f"h{i}x")) for i in range(6)]
    ana = people[0]
    cid = await api.group(ana, *people[1:], title="long room")
    word = unique_name("common")
    for i in range(120):
        body = "a REUNIÃO às 10h" if i == 3 else f"{word} line {i:03d}"
        await api.send(people[(i + 1) % 6], cid, body)

    page = await contexts.page(chat_server.url, locale="en-GB")
    await login(page, ana)
    # 116 matches: the server returns the newest 50, and the page says it may be more.
    await _search_until(page, word, 50)
    await expect(page.locator("#search-status")).to_have_text(
        "The newest 50 matches are shown; there may be more. Add words to narrow the search."
    )
    # Unicode case folding, the author (not the conversation) and an en-GB date.
    await _search_until(page, "reunião", 1)
    hit = page.locator(".search-hit")
    await expect(hit.locator(".author")).to_have_text(people[4].username)
    await expect(hit.locator(".preview")).to_have_text("a REUNIÃO às 10h")
    await expect(hit.locator(".where")).to_have_text("in long room")
    await expect(hit.locator("time")).to_have_text(
        re.compile(r"^\d{1,2} \w{3,4} \d{4}, \d{2}:\d{2}$")
    )

    await hit.click()
    await expect(page.locator("#chat-title")).to_have_text("long room")
    target = page.locator('.messages .msg[data-seq="4"]')
    await expect(target).to_have_class(re.compile(r"\bhit\b"))
    await expect(target).to_be_in_viewport()
    await expect(target.locator(".body")).to_have_text("a REUNIÃO às 10h")
    assert contexts.errors == []
