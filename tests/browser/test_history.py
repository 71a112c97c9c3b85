"""History and session life cycle: upward infinite scroll over cursor pages, deletes shown
live, the session surviving a reload and ending on logout."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.browser.conftest import Contexts, DevServer, login, unique_name
from tests.support.clients import Api

pytestmark = pytest.mark.browser


async def test_scroll_up_loads_older_pages_in_order_and_deletes_show_live(
    chat_server: DevServer, contexts: Contexts, api: Api
) -> None:
    # Three senders so the per-user send bucket (burst 20) is not the bottleneck.
    ana, bob, cyd = [await api.register(unique_name(p)) for p in ("ana", "bob", "cyd")]
    cid = await api.group(ana, bob, cyd, title="long history")
    senders = (ana, bob, cyd)
    for i in range(60):
        await api.send(senders[i % 3], cid, f"m{i:02d}")

    page = await contexts.page(chat_server.url)
    await login(page, ana)
    await page.locator(".conv", has_text="long history").click()
    messages = page.locator(".messages .msg")
    await expect(messages).to_have_count(50)  # the newest page
    await expect(messages.last.locator(".body")).to_have_text("m59")
    await expect(page.locator(".load-older")).to_be_visible()

    # Scrolling to the top fetches the page before the oldest seq (the event is dispatched too,
    # in case the browser coalesced the scroll away).
    await page.locator(".scroller").evaluate(
        "el => { el.scrollTop = 0; el.dispatchEvent(new Event('scroll')); }"
    )
    await expect(messages).to_have_count(60)
    await expect(page.locator(".start")).to_be_visible()
    await expect(page.locator(".messages .msg .body")).to_have_text(
        [f"m{i:02d}" for i in range(60)]
    )
    await expect(page.locator(".messages .day")).to_have_count(1)

    # Cyd deletes the newest message (m59, seq 60); Ana sees the marker live, and the
    # conversation preview follows.
    ref = await api.http.delete(
        f"/api/v1/conversations/{cid}/messages/60", params={"client_id": "d60"}, headers=cyd.auth
    )
    assert ref.status_code == 200, ref.text
    last = page.locator(".messages .msg").last
    await expect(last.locator(".body")).to_have_text("This message was deleted")
    await expect(last).to_have_class("msg theirs deleted")
    await expect(page.locator(".conv", has_text="long history").locator(".preview")).to_have_text(
        "Message deleted"
    )

    # Ana deletes one of her own from the UI (two-step confirm, no browser dialog).
    mine = page.locator(".messages .msg.mine").last
    await expect(mine.locator(".body")).to_have_text("m57")
    await mine.hover()  # Edit/Delete show on the message under the pointer
    await mine.get_by_role("button", name="Delete").click()
    await mine.get_by_role("button", name="Really delete?").click()
    await expect(mine.locator(".body")).to_have_text("This message was deleted")
    await expect(mine.get_by_role("button", name="Edit")).to_have_count(0)
    history = await api.history(bob, cid, after=57)
    assert [(m["seq"], m["deleted"]) for m in history] == [(58, True), (59, False), (60, True)]
    assert contexts.dialogs == []


async def test_session_survives_reload_and_logout_ends_it(
    chat_server: DevServer, contexts: Contexts, api: Api
) -> None:
    me = await api.register(unique_name("eve"))
    page = await contexts.page(chat_server.url)
    await login(page, me)
    first = await page.evaluate("localStorage.getItem('cc.refresh')")
    assert first

    await page.reload()
    await expect(page.locator(".top .me")).to_contain_text(me.username)
    rotated = await page.evaluate("localStorage.getItem('cc.refresh')")
    assert rotated and rotated != first  # the reload rotated the refresh token

    await page.get_by_role("button", name="Log out").click()
    await expect(page.locator("#auth-username")).to_be_visible()
    assert await page.evaluate("localStorage.getItem('cc.refresh')") is None
    r = await api.http.post("/api/v1/auth/refresh", json={"refresh_token": rotated})
    assert r.status_code == 401, r.text  # the server ended the session too
    await page.reload()
    await expect(page.locator("#auth-username")).to_be_visible()
