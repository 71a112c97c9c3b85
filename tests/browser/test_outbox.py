"""The send queue: a message whose encoded frame is over the server's frame limit is refused in
the UI and never queued (4000 control characters are 4000 characters but ~24 000 bytes of
JSON), it cannot block the messages after it, and a reload keeps what was not sent yet."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, WebSocketRoute, expect

from tests.browser.conftest import (
    Contexts,
    DevServer,
    login,
    open_dm,
    send,
    sent_frames,
    unique_name,
)
from tests.support.clients import Api

pytestmark = pytest.mark.browser


def _sends(frames: list[dict[str, object]]) -> list[object]:
    return [f["body"] for f in frames if f.get("type") == "send"]


async def test_oversized_frame_is_refused_and_never_queued(
    chat_server: DevServer, contexts: Contexts, api: Api
) -> None:
    ana, bob = await api.register(unique_name("ana")), await api.register(unique_name("bob"))
    page = await contexts.page(None)
    frames = sent_frames(page)
    await page.goto(chat_server.url)
    await login(page, ana)
    await open_dm(page, bob.username)

    heavy = "\u0001" * 4000  # within max_body_chars, but each one is "\u0001" in JSON
    await page.locator("#composer").fill(heavy)
    await page.locator("#composer").press("Enter")
    await expect(page.locator("#composer-error")).to_contain_text("too large to send")
    await expect(page.locator("#composer-error")).to_contain_text("at most 16384")
    await expect(page.locator(".messages .msg")).to_have_count(0)  # not queued
    await expect(page.locator("#composer")).to_have_value(heavy)  # kept, to be shortened

    await send(page, "the next one goes through")
    await expect(page.locator(".messages .msg:not(.pending) .body")).to_have_text(
        ["the next one goes through"]
    )
    assert _sends(frames) == ["the next one goes through"]
    assert await page.locator("#banner").is_hidden()  # the socket never closed
    assert contexts.errors == []


async def test_unsent_messages_survive_a_reload(
    chat_server: DevServer, contexts: Contexts, api: Api
) -> None:
    ana, bob = await api.register(unique_name("ana")), await api.register(unique_name("bob"))
    cid = await api.dm(ana, bob)
    page = await contexts.page(None)
    # While `held`, the page's sockets open but never reach the server (no `ready`): sends queue.
    held: list[WebSocketRoute] = []
    blocked = True

    async def gate(ws: WebSocketRoute) -> None:
        if blocked:
            held.append(ws)
        else:
            ws.connect_to_server()

    await page.route_web_socket("**/ws", gate)
    await page.goto(chat_server.url)
    await login(page, ana)
    await page.locator(".conv", has_text=bob.username).click()
    await send(page, "written before the reload")
    await expect(page.locator(".messages .msg.pending .body")).to_have_text(
        ["written before the reload"]
    )

    await page.reload()
    await expect(page.locator(".top .me")).to_contain_text(ana.username)
    await page.locator(".conv", has_text=bob.username).click()
    await expect(page.locator(".messages .msg.pending .body")).to_have_text(
        ["written before the reload"]
    )

    blocked = False
    for ws in held:
        await ws.close(code=1011, reason="test: let the page reconnect")
    await expect(page.locator(".messages .msg:not(.pending) .body")).to_have_text(
        ["written before the reload"], timeout=20_000
    )
    await expect(page.locator(".messages .msg.pending")).to_have_count(0)
    assert [m["body"] for m in await api.history(bob, cid)] == ["written before the reload"]
    await _no_outbox_left(page)


async def _no_outbox_left(page: Page) -> None:
    left = await page.evaluate(
        "Object.keys(sessionStorage).filter(k => k.startsWith('cc.outbox.'))"
        ".map(k => JSON.parse(sessionStorage.getItem(k)).length)"
    )
    assert left in ([], [0])
