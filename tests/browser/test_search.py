"""Message search in real Chromium: finds text in my conversations only, any case, shows it
as text, opens the conversation, and says so when nothing matches."""

from __future__ import annotations

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
    await expect(hit.locator(".conv-title")).to_have_text(bob.username)
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
