"""The server dies (SIGKILL) and comes back on the same data directory and port while two
pages stay open: both show the reconnect banner, resume, and end with every message exactly
once, in the server's order — including one typed while offline and ones another user sent
over HTTP while the page was still away."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import expect

from tests.browser.conftest import (
    Contexts,
    DevServer,
    login,
    send,
    sent_frames,
    start_dev,
    unique_name,
)
from tests.support.clients import Api

pytestmark = pytest.mark.browser

RECONNECT_TIMEOUT_MS = 30_000  # restart of the server process plus the backoff step


@pytest.fixture
async def own_server(tmp_path: Path) -> AsyncIterator[DevServer]:
    server = await start_dev(tmp_path)
    yield server
    server.stop()


async def test_kill_restart_resume_exactly_once_in_order(
    own_server: DevServer, contexts: Contexts
) -> None:
    server = own_server
    before = Api(server.url.rstrip("/"))
    try:
        ana = await before.register(unique_name("ana"))
        bob = await before.register(unique_name("bob"))
        cid = await before.dm(ana, bob)
        await before.send(bob, cid, "before 1")
    finally:
        await before.close()

    ana_page = await contexts.page(None)
    frames = sent_frames(ana_page)
    await ana_page.goto(server.url)
    await login(ana_page, ana)
    bob_page = await contexts.page(server.url)
    await login(bob_page, bob)
    await ana_page.locator(".conv", has_text=bob.username).click()
    await bob_page.locator(".conv", has_text=ana.username).click()
    await send(ana_page, "before 2")
    for page in (ana_page, bob_page):
        await expect(page.locator(".messages .msg .body")).to_have_text(["before 1", "before 2"])
        await expect(page.locator("#banner")).to_be_hidden()

    sent_before_kill = len(frames)
    server.kill()
    for page in (ana_page, bob_page):
        await expect(page.locator("#banner")).to_be_visible()
        await expect(page.locator("#banner")).to_contain_text("Reconnect")
    # Written while the server is down: shown at once, marked pending.
    await send(ana_page, "while down")
    await expect(ana_page.locator(".messages .msg.pending .body")).to_have_text(["while down"])

    await server.start()
    after = Api(server.url.rstrip("/"))
    try:
        # Bob's session survived the restart; he sends over HTTP while the pages reconnect.
        for i in range(3):
            await after.send(bob, cid, f"during {i}")
        for page in (ana_page, bob_page):
            await expect(page.locator("#banner")).to_be_hidden(timeout=RECONNECT_TIMEOUT_MS)
        expected_set = {"before 1", "before 2", "while down", "during 0", "during 1", "during 2"}
        await expect(ana_page.locator(".messages .msg:not(.pending)")).to_have_count(6)
        history = [m["body"] for m in await after.history(ana, cid)]
    finally:
        await after.close()
    assert set(history) == expected_set and len(history) == 6
    assert history[:2] == ["before 1", "before 2"]
    for page in (ana_page, bob_page):
        await expect(page.locator(".messages .msg .body")).to_have_text(history)
        await expect(page.locator(".messages .msg.pending")).to_have_count(0)

    # After the restart the page resumed from its own position (seq 2), before re-sending the
    # message typed offline, and that message kept one client_id however often it went out.
    later = frames[sent_before_kill:]
    # The position travels in the auth frame, so the gap is replayed before anything live.
    first_resume = next(i for i, f in enumerate(later) if f.get("type") == "auth" and "resume" in f)
    assert later[first_resume]["resume"][cid] == 2
    down = [i for i, f in enumerate(later) if f.get("type") == "send"]
    assert down and min(down) > first_resume
    assert {later[i]["client_id"] for i in down} == {later[down[0]]["client_id"]}
    assert {later[i]["body"] for i in down} == {"while down"}
    assert contexts.dialogs == []
