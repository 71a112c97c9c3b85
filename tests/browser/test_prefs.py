"""Language and theme: switchable, remembered across reloads; screenshots of the result at
desktop and phone widths in both themes (written to docs/screenshots/)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import REPO, Contexts, DevServer, login, unique_name
from tests.support.clients import Account, Api

pytestmark = pytest.mark.browser

SHOTS = REPO / "docs" / "screenshots"


async def test_language_and_dark_mode_persist_across_reload(
    chat_server: DevServer, contexts: Contexts, api: Api
) -> None:
    me = await api.register(unique_name("lang"))
    page = await contexts.page(chat_server.url, color_scheme="light", locale="en-US")
    await expect(page.locator("html")).to_have_attribute("data-theme", "light")
    await login(page, me)

    await page.locator(".settings summary").click()
    await page.locator("#pref-lang").select_option("pt-BR")
    await page.locator(".settings summary").click()
    await page.locator("#pref-theme").select_option("dark")
    await expect(page.get_by_role("button", name="Sair")).to_be_visible()
    await expect(page.locator("html")).to_have_attribute("data-theme", "dark")

    await page.reload()
    await expect(page.locator("html")).to_have_attribute("lang", "pt-BR")
    await expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    # Still signed in (refresh token rotated), and the chrome is in Portuguese.
    await expect(page.get_by_role("button", name="Sair")).to_be_visible()
    await expect(page.locator("#dm-username")).to_have_attribute(
        "placeholder", "nome ou nome de usuário"
    )
    background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(17, 20, 24)"

    # Back to English and the system theme (light here): remembered too.
    await page.locator(".settings summary").click()
    await page.locator("#pref-lang").select_option("en")
    await page.locator(".settings summary").click()
    await page.locator("#pref-theme").select_option("system")
    await page.reload()
    await expect(page.get_by_role("button", name="Log out")).to_be_visible()
    await expect(page.locator("html")).to_have_attribute("data-theme", "light")


async def test_theme_follows_the_system_until_chosen(
    chat_server: DevServer, contexts: Contexts
) -> None:
    page = await contexts.page(chat_server.url, color_scheme="dark")
    await expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    await page.emulate_media(color_scheme="light")
    await expect(page.locator("html")).to_have_attribute("data-theme", "light")
    await page.locator("#pref-theme").select_option("dark")
    await page.emulate_media(color_scheme="light")
    await page.reload()
    await expect(page.locator("html")).to_have_attribute("data-theme", "dark")


async def _populate(api: Api) -> tuple[Account, Account]:
    ana = await api.register(unique_name("ana"))
    bob = await api.register(unique_name("bob"))
    cyd = await api.register(unique_name("cyd"))
    dm = await api.dm(ana, bob)
    group = await api.group(ana, bob, cyd, title="Release planning")
    await api.send(bob, group, "Cutting the release branch at five.")
    await api.send(cyd, group, "Dashboards are green.")
    for who, text in [
        (bob, "Morning! Did the deploy go out?"),
        (ana, "Yes, all three regions. Latency looks fine."),
        (bob, "Great. <b>No HTML</b> here, just text."),
        (ana, "Shipping the notes now."),
    ]:
        await api.send(who, dm, text)
    return ana, bob


async def _shoot(page: Page, name: str) -> Path:
    path = SHOTS / name
    await page.screenshot(path=str(path), scale="css")
    assert path.stat().st_size > 5_000  # a real render, not a blank page
    return path


@pytest.mark.parametrize("theme", ["light", "dark"])
async def test_screenshots(
    chat_server: DevServer, contexts: Contexts, api: Api, theme: str
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    ana, bob = await _populate(api)
    desktop = await contexts.page(chat_server.url, color_scheme=theme, locale="en-US")
    await login(desktop, ana)
    await desktop.locator(".conv", has_text=bob.username).click()
    await expect(desktop.locator(".messages .msg")).to_have_count(4)
    await expect(desktop.locator(".conv .conv-title")).to_have_text(
        [bob.username, "Release planning"]
    )
    await _shoot(desktop, f"desktop-{theme}.png")

    phone = await contexts.page(
        chat_server.url,
        color_scheme=theme,
        locale="en-US",
        viewport={"width": 375, "height": 720},
        device_scale_factor=1,
        is_mobile=True,
        has_touch=True,
    )
    await login(phone, bob)
    await expect(phone.locator(".conv .conv-title")).to_have_text(
        [ana.username, "Release planning"]
    )
    await _shoot(phone, f"mobile-list-{theme}.png")
    await phone.locator(".conv", has_text=ana.username).click()
    await expect(phone.locator(".messages .msg")).to_have_count(4)
    await expect(phone.locator(".sidebar")).to_be_hidden()
    # Nothing wider than the phone: no horizontal scrolling.
    width = await phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 375
    await _shoot(phone, f"mobile-chat-{theme}.png")


UNLABELLED = """() => {
  const named = (el) =>
    (el.labels && el.labels.length > 0) ||
    el.getAttribute("aria-label") ||
    el.getAttribute("aria-labelledby") ||
    (el.tagName === "BUTTON" && el.textContent.trim());
  return [...document.querySelectorAll("input, select, textarea, button")]
    .filter((el) => el.offsetParent !== null && !named(el))
    .map((el) => el.outerHTML);
}"""


async def test_keyboard_only_login_and_labelled_controls(
    chat_server: DevServer, contexts: Contexts, api: Api
) -> None:
    me = await api.register(unique_name("kim"))
    other = await api.register(unique_name("lee"))
    await api.dm(me, other)
    page = await contexts.page(chat_server.url)
    assert await page.evaluate(UNLABELLED) == []
    # Username has focus on load; Tab moves through the form; Enter submits.
    await expect(page.locator("#auth-username")).to_be_focused()
    await page.keyboard.type(me.username)
    await page.keyboard.press("Tab")
    await expect(page.locator("#auth-password")).to_be_focused()
    await page.keyboard.type(me.password)
    await page.keyboard.press("Enter")
    await expect(page.locator(".top .me")).to_contain_text(me.username)
    # Reach the conversation by keyboard and open it.
    conv = page.locator(".conv", has_text=other.username)
    await conv.focus()
    focused = await page.evaluate(
        "[document.activeElement.className, getComputedStyle(document.activeElement).outlineStyle]"
    )
    assert focused == ["conv", "solid"]  # a visible focus ring
    await page.keyboard.press("Enter")
    await expect(page.locator("#chat-title")).to_have_text(other.username)
    await expect(page.locator("#composer")).to_be_focused()
    assert await page.evaluate(UNLABELLED) == []
    await page.get_by_role("button", name="New group").click()
    await expect(page.locator("#group-title")).to_be_focused()
    assert await page.evaluate(UNLABELLED) == []
    await page.keyboard.press("Escape")
    await expect(page.locator("dialog")).to_have_count(0)
