"""People: my own username is shown (header on desktop, the Settings popover everywhere), a
direct message starts from a name search with autocomplete (GET /api/v1/users?q=), and an
offline contact shows when they were last seen."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from tests.browser.conftest import PASSWORD, Contexts, DevServer, login, unique_name
from tests.support.clients import Account, Api

pytestmark = pytest.mark.browser


async def _register_named(api: Api, prefix: str, display_name: str) -> Account:
    username = unique_name(prefix)
    r = await api.http.post(
        "/api/v1/auth/register",
        json={"username": username, "password": PASSWORD, "display_name": display_name},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    return Account(
        body["user"]["id"], username, PASSWORD, body["access_token"], body["refresh_token"]
    )


async def test_own_username_and_autocomplete_starts_a_dm(
    chat_server: DevServer, contexts: Contexts, api: Api
) -> None:
    tag = unique_name("t")
    ana = await _register_named(api, "ana", "Ana Lima")
    rob = await _register_named(api, "rob", f"Roberto Carlos{tag}")
    page = await contexts.page(chat_server.url)
    await login(page, ana)
    await expect(page.locator(".top .me")).to_have_text(f"Signed in as Ana Lima (@{ana.username})")
    await page.locator(".settings summary").click()
    await expect(page.locator(".settings .whoami")).to_have_text(f"You are @{ana.username}")
    await page.locator(".settings summary").click()

    field = page.locator("#dm-username")
    await field.press_sequentially(f"CARLOS{tag}")  # a word of the display name, any case
    options = page.locator("#dm-suggestions").get_by_role("option")
    await expect(options).to_have_count(1)
    await expect(options.first).to_contain_text(f"Roberto Carlos{tag}")
    await expect(options.first).to_contain_text(f"@{rob.username}")
    await expect(field).to_have_attribute("aria-expanded", "true")
    await field.press("ArrowDown")
    await expect(options.first).to_have_attribute("aria-selected", "true")
    await field.press("Enter")
    await expect(page.locator("#chat-title")).to_have_text(f"Roberto Carlos{tag}")
    await expect(options).to_have_count(0)
    await expect(field).to_have_value("")
    assert contexts.errors == []


async def test_offline_contact_shows_last_seen(
    chat_server: DevServer, contexts: Contexts, api: Api
) -> None:
    ana = await api.register(unique_name("ana"))
    cyd = await api.register(unique_name("cyd"))
    await api.dm(ana, cyd)
    page = await contexts.page(chat_server.url)
    await login(page, ana)
    await page.locator(".conv", has_text=cyd.username).click()
    await expect(page.locator(".chat-sub")).to_have_text("offline")  # never connected

    cyd_page = await contexts.page(chat_server.url)
    await login(cyd_page, cyd)
    await expect(page.locator(".chat-sub")).to_have_text("online")
    await cyd_page.context.close()
    await expect(page.locator(".chat-sub")).to_have_text(
        re.compile(r"^offline · last seen (just now|1 minute ago)$")
    )


async def test_group_owner_adds_a_member_from_suggestions(
    chat_server: DevServer, contexts: Contexts, api: Api
) -> None:
    tag = unique_name("g")
    ana = await api.register(unique_name("ana"))
    bob = await api.register(unique_name("bob"))
    cyd = await _register_named(api, "cyd", f"Cydney Vale{tag}")
    await api.group(ana, bob, title="picked")
    page = await contexts.page(chat_server.url)
    await login(page, ana)
    await page.locator(".conv", has_text="picked").click()
    await page.get_by_role("button", name="Members").click()
    await page.get_by_label("Username to add").press_sequentially(f"vale{tag}")
    option = page.locator("#member-suggestions").get_by_role("option")
    await expect(option).to_have_count(1)
    await expect(option).to_contain_text(f"@{cyd.username}")
    await option.click()
    await expect(page.locator("dialog .member-list li")).to_have_count(3)
    await expect(page.locator("dialog .member-list")).to_contain_text(f"Cydney Vale{tag}")
    assert contexts.errors == []
