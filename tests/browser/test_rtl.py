"""Right-to-left text (Arabic, Hebrew) is laid out right to left wherever other people's text
appears: message bodies, conversation previews, names. `dir="auto"` lets each element take the
direction of its own first strong character, so mixed conversations work both ways."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import PASSWORD, Contexts, DevServer, login, unique_name
from tests.support.clients import Account, Api

pytestmark = pytest.mark.browser

ARABIC = "مرحبا، كيف حالك؟"
HEBREW_NAME = "דנה כהן"


async def _register_named(api: Api, display_name: str) -> Account:
    username = unique_name("rtl")
    r = await api.http.post(
        "/api/v1/auth/register",
        json={"username": username, "password": PASSWORD, "display_name": display_name},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    return Account(
        body["user"]["id"], username, PASSWORD, body["access_token"], body["refresh_token"]
    )


async def _directions(page: Page, selector: str) -> list[str]:
    return list(
        await page.locator(selector).evaluate_all(
            "els => els.map(el => el.matches(':dir(rtl)') ? 'rtl' : 'ltr')"
        )
    )


async def test_rtl_bodies_previews_and_names_run_right_to_left(
    chat_server: DevServer, contexts: Contexts, api: Api
) -> None:
    ana = await api.register(unique_name("ana"))
    dana = await _register_named(api, HEBREW_NAME)
    group = await api.group(ana, dana, title="שלום team")
    await api.send(dana, group, ARABIC)
    await api.send(ana, group, "plain English stays left to right")

    page = await contexts.page(chat_server.url)
    await login(page, ana)
    conv = page.locator(".conv", has_text="team")
    await expect(conv.locator(".preview")).to_contain_text("plain English")
    assert await _directions(page, ".conv .conv-title") == ["rtl"]
    await conv.click()
    await expect(page.locator(".messages .msg .body")).to_have_text(
        [ARABIC, "plain English stays left to right"]
    )
    assert await _directions(page, ".messages .msg .body") == ["rtl", "ltr"]
    # The author's name arrives with the user lookup: wait for it before asking its direction.
    await expect(page.locator(".messages .msg.theirs .author")).to_have_text([HEBREW_NAME])
    assert await _directions(page, ".messages .msg.theirs .author") == ["rtl"]
    assert await _directions(page, "#chat-title") == ["rtl"]

    # The preview follows the newest message's own direction.
    await api.send(dana, group, ARABIC)
    await expect(conv.locator(".preview")).to_have_text(ARABIC)
    assert await _directions(page, ".conv .preview") == ["rtl"]
    assert contexts.errors == []
