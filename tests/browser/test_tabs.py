"""Two tabs of one person: they share the refresh token in localStorage, and refresh tokens
rotate on every use (reusing a rotated one revokes the session). Reloaded at the same moment,
both tabs must stay signed in: the client serialises the rotation across tabs."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import expect

from tests.browser.conftest import Contexts, DevServer, login, unique_name
from tests.support.clients import Api

pytestmark = pytest.mark.browser


async def test_two_tabs_reloaded_at_once_both_stay_signed_in(
    chat_server: DevServer, contexts: Contexts, api: Api
) -> None:
    me = await api.register(unique_name("tab"))
    first = await contexts.page(chat_server.url)
    await login(first, me)
    second = await first.context.new_page()
    await second.goto(chat_server.url)
    await expect(second.locator(".top .me")).to_contain_text(me.username)

    for _ in range(3):  # the race is timing-dependent: several rounds make a loss likely
        await asyncio.gather(first.reload(), second.reload())
        for page in (first, second):
            await expect(page.locator(".top .me")).to_contain_text(me.username)
            await expect(page.locator("#auth-username")).to_have_count(0)
    # The token both tabs share is still a live one.
    token = await first.evaluate("localStorage.getItem('cc.refresh')")
    r = await api.http.post("/api/v1/auth/refresh", json={"refresh_token": token})
    assert r.status_code == 200, r.text
    assert contexts.errors == []
