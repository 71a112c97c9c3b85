"""Offline is shown: when the browser loses the network (or the socket silently stops
answering pings) a banner says so at once, contacts are not shown online on stale data, and a
message written meanwhile says it is waiting for the connection; it goes out when the network
is back."""

from __future__ import annotations

import json

import pytest
from playwright.async_api import WebSocketRoute, expect

from tests.browser.conftest import Contexts, DevServer, login, send, unique_name
from tests.support.clients import Api

pytestmark = pytest.mark.browser


async def test_browser_offline_shows_banner_unknown_presence_and_waiting_sends(
    chat_server: DevServer, contexts: Contexts, api: Api
) -> None:
    ana, bob = await api.register(unique_name("ana")), await api.register(unique_name("bob"))
    cid = await api.dm(ana, bob)
    ana_page = await contexts.page(chat_server.url)
    bob_page = await contexts.page(chat_server.url)
    await login(ana_page, ana)
    await login(bob_page, bob)
    await ana_page.locator(".conv", has_text=bob.username).click()
    await expect(ana_page.locator(".chat-sub")).to_have_text("online")
    await expect(ana_page.locator(".conv .dot")).to_have_class("dot online")

    await ana_page.context.set_offline(True)
    banner = ana_page.locator("#banner")
    await expect(banner).to_be_visible(timeout=5_000)
    await expect(banner).to_contain_text("You are offline")
    await expect(ana_page.locator(".chat-sub")).to_have_text("status unknown")
    await expect(ana_page.locator(".conv .dot")).not_to_have_class("dot online")

    await send(ana_page, "typed without network")
    pending = ana_page.locator(".messages .msg.pending")
    await expect(pending.locator(".body")).to_have_text(["typed without network"])
    await expect(pending.locator(".flag")).to_have_text("Not sent yet: waiting for the connection")

    await ana_page.context.set_offline(False)
    await expect(banner).to_be_hidden(timeout=15_000)
    await expect(ana_page.locator(".messages .msg:not(.pending) .body")).to_have_text(
        ["typed without network"]
    )
    await expect(ana_page.locator(".chat-sub")).to_have_text("online")
    await bob_page.locator(".conv", has_text=ana.username).click()
    await expect(bob_page.locator(".messages .msg .body")).to_have_text(["typed without network"])
    assert [m["body"] for m in await api.history(bob, cid)] == ["typed without network"]


async def test_a_socket_that_stops_answering_pings_is_dropped_and_replaced(
    chat_server: DevServer, contexts: Contexts, api: Api
) -> None:
    ana = await api.register(unique_name("ana"))
    page = await contexts.page(None)
    # A proxy in front of /ws: it shortens the advertised heartbeat to 1 s and, for the first
    # connection only, swallows the server's pongs: a link that is open but dead.
    connections: list[WebSocketRoute] = []

    async def proxy(ws: WebSocketRoute) -> None:
        connections.append(ws)
        dead = len(connections) == 1
        server = ws.connect_to_server()

        def from_server(message: str | bytes) -> None:
            frame = json.loads(message)
            if frame.get("type") == "ready":
                frame["limits"]["heartbeat_interval_s"] = 1
                message = json.dumps(frame)
            if dead and frame.get("type") == "pong":
                return
            ws.send(message)

        server.on_message(from_server)

    await page.route_web_socket("**/ws", proxy)
    # The banner shows from the drop until the replacement is open: a backoff of 250-500 ms
    # plus the connect. Polling for it (expect's retries are a second apart by then) can fall
    # on either side of that window, so every state it shows is recorded as it happens.
    await page.add_init_script(
        """
        window.bannerStates = [];
        document.addEventListener("DOMContentLoaded", () => {
          const banner = document.querySelector("#banner");
          new MutationObserver(() => {
            if (!banner.hidden) window.bannerStates.push(banner.dataset.state);
          }).observe(banner, { attributes: true, attributeFilter: ["hidden", "data-state"] });
        });
        """
    )
    await page.goto(chat_server.url)
    await login(page, ana)
    # Detected within a few heartbeats (1 s ping, 1 s pong deadline), not minutes, and
    # replaced by a new connection that works.
    await page.wait_for_function("() => window.bannerStates.length > 0", timeout=6_000)
    await expect(page.locator("#banner")).to_be_hidden(timeout=10_000)
    shown = await page.evaluate("() => window.bannerStates")
    assert set(shown) <= {"offline", "connecting"}, shown
    assert len(connections) >= 2
