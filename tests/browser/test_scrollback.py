"""Scrolling back through a long conversation: each older page is inserted above without
moving what the reader is looking at (the top visible message stays where it was on screen),
and further wheel scrolling keeps loading older pages until the beginning."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import Page, Route, expect

from tests.browser.conftest import Contexts, DevServer, login, unique_name
from tests.support.clients import Api

pytestmark = pytest.mark.browser

TOTAL = 160


async def _top_of(page: Page, body: str) -> float:
    box = await page.locator(".messages .msg", has_text=body).bounding_box()
    assert box is not None
    return box["y"]


async def test_older_pages_keep_the_anchor_and_keep_loading(
    chat_server: DevServer, contexts: Contexts, api: Api
) -> None:
    # Eight senders, so 160 sends stay within each one's send burst.
    people = [await api.register(unique_name(f"s{i}x")) for i in range(8)]
    cid = await api.group(people[0], *people[1:], title="scrollback")
    for i in range(TOTAL):
        await api.send(people[i % 8], cid, f"line {i:03d}")

    page = await contexts.page(chat_server.url, viewport={"width": 1000, "height": 700})
    # The first older page is held until the anchor's position has been measured.
    release = asyncio.Event()
    asked = asyncio.Event()

    async def hold(route: Route) -> None:
        asked.set()
        await release.wait()
        await route.continue_()

    await page.route("**/messages?*before=*", hold)
    await login(page, people[0])
    await page.locator(".conv", has_text="scrollback").click()
    messages = page.locator(".messages .msg")
    await expect(messages).to_have_count(50)
    await expect(messages.last.locator(".body")).to_have_text(f"line {TOTAL - 1:03d}")

    await page.locator(".scroller").hover()
    oldest = f"line {TOTAL - 50:03d}"
    for _ in range(20):  # wheel up until the view asks for the older page (bounded)
        await page.mouse.wheel(0, -2000)
        if asked.is_set():
            break
        await page.wait_for_timeout(100)  # lets the smooth scroll run; not synchronisation
    assert asked.is_set()
    before = await _top_of(page, oldest)
    release.set()
    await expect(messages).to_have_count(100)
    after = await _top_of(page, oldest)
    assert abs(after - before) <= 2, (before, after)  # the reader's place did not move

    # Further wheel scrolling loads the remaining pages, down to the first message.
    for expected in (150, TOTAL):
        for _ in range(30):
            await page.mouse.wheel(0, -1500)
            if await messages.count() >= expected:
                break
            await page.wait_for_timeout(100)
        await expect(messages).to_have_count(expected)
    await expect(page.locator(".start")).to_be_visible()
    await expect(messages.first.locator(".body")).to_have_text("line 000")
    assert contexts.errors == []
