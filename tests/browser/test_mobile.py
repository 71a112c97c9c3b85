"""Small screens and keyboards: the Settings popover fits a 375 px phone, the message list is
a short walk for the Tab key (Edit/Delete are not a Tab stop on every bubble; they show on the
message that has hover or focus), and the light theme's "online" green is readable (>= 4.5:1)."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.browser.conftest import Contexts, DevServer, login, unique_name
from tests.support.clients import Api

pytestmark = pytest.mark.browser

PHONE = {
    "viewport": {"width": 375, "height": 720},
    "device_scale_factor": 1,
    "is_mobile": True,
    "has_touch": True,
}

CONTRAST = """el => {
  const rgb = (s) => s.match(/[\\d.]+/g).slice(0, 4).map(Number);
  const lum = ([r, g, b]) => {
    const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  let bg = el;
  while (bg && (getComputedStyle(bg).backgroundColor === "rgba(0, 0, 0, 0)")) bg = bg.parentElement;
  const a = lum(rgb(getComputedStyle(el).color));
  const b = lum(rgb(getComputedStyle(bg || document.body).backgroundColor));
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}"""


async def test_settings_popover_fits_a_phone(
    chat_server: DevServer, contexts: Contexts, api: Api
) -> None:
    me = await api.register(unique_name("pho"))
    page = await contexts.page(chat_server.url, **PHONE)
    await login(page, me)
    await page.locator(".settings summary").click()
    popover = page.locator(".settings .prefs")
    await expect(popover).to_be_visible()
    box = await popover.bounding_box()
    assert box is not None
    assert box["x"] >= 0 and box["x"] + box["width"] <= 375, box
    await expect(page.locator(".settings .whoami")).to_be_in_viewport()
    assert await page.evaluate("document.documentElement.scrollWidth") <= 375


async def test_few_tab_stops_from_the_list_to_the_composer(
    chat_server: DevServer, contexts: Contexts, api: Api
) -> None:
    ana, bob = await api.register(unique_name("ana")), await api.register(unique_name("bob"))
    cid = await api.dm(ana, bob)
    for i in range(12):
        await api.send(ana, cid, f"mine {i}")
    page = await contexts.page(chat_server.url)
    await login(page, ana)
    conv = page.locator(".conv", has_text=bob.username)
    await conv.click()
    await expect(page.locator(".messages .msg.mine")).to_have_count(12)
    # Edit/Delete are out of sight until a message has hover or focus.
    await expect(page.locator(".messages .msg .edit").first).to_be_hidden()

    await conv.focus()
    stops = 0
    while stops < 40:
        await page.keyboard.press("Tab")
        stops += 1
        if await page.evaluate("document.activeElement.id") == "composer":
            break
    assert stops <= 6, stops

    # By keyboard: the newest message is the list's one stop; arrows move between messages,
    # and Tab from a message reaches its own Edit.
    newest = page.locator(".messages .msg").last
    await newest.focus()
    await expect(newest.locator(".edit")).to_be_visible()
    await page.keyboard.press("ArrowUp")
    previous = page.locator(".messages .msg").nth(10)
    await expect(previous).to_be_focused()
    await page.keyboard.press("Tab")
    await expect(previous.locator(".edit")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.locator("#composer")).to_have_value("mine 10")
    await expect(page.locator(".edit-bar")).to_be_visible()


async def test_online_green_contrast_in_light_theme(
    chat_server: DevServer, contexts: Contexts, api: Api
) -> None:
    ana, bob = await api.register(unique_name("ana")), await api.register(unique_name("bob"))
    await api.dm(ana, bob)
    bob_page = await contexts.page(chat_server.url)
    await login(bob_page, bob)
    page = await contexts.page(chat_server.url, color_scheme="light")
    await login(page, ana)
    await page.locator(".conv", has_text=bob.username).click()
    online = page.locator(".chat-sub.presence-online")
    await expect(online).to_have_text("online")
    assert await online.evaluate(CONTRAST) >= 4.5
