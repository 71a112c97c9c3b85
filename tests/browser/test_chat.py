"""Two and three people chatting in real Chromium: live delivery both ways, typing, unread
badges, read state, groups and membership, message text that must never become HTML, and bad
input that must be refused in the UI without sending anything."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import Locator, Page, expect

from tests.browser.conftest import (
    Contexts,
    DevServer,
    login,
    open_dm,
    register,
    send,
    sent_frames,
    unique_name,
)
from tests.support.clients import Api

pytestmark = pytest.mark.browser


def bodies(page: Page) -> Locator:
    return page.locator(".messages .msg .body")


async def test_dm_live_both_ways_typing_unread_and_seen(
    chat_server: DevServer, contexts: Contexts
) -> None:
    ana_name, bob_name = unique_name("ana"), unique_name("bob")
    ana = await contexts.page(chat_server.url)
    bob = await contexts.page(chat_server.url)
    await register(ana, ana_name, "Ana")
    await register(bob, bob_name, "Bob")

    await open_dm(ana, bob_name, "Bob")
    await send(ana, "hello bob")
    await expect(ana.locator(".messages .msg.mine .body")).to_have_text(["hello bob"])
    # The new conversation shows up in Bob's list, unread, without a reload.
    bob_dm = bob.locator(".conv", has_text="Ana")
    await expect(bob_dm.locator(".badge")).to_have_text("1")
    await bob_dm.click()
    await expect(bodies(bob)).to_have_text(["hello bob"])
    await expect(bob_dm.locator(".badge")).to_have_count(0)
    await expect(bob.locator(".chat-sub")).to_have_text("online")  # Ana's presence

    await send(bob, "hi ana")
    await expect(bodies(ana)).to_have_text(["hello bob", "hi ana"])
    await expect(ana.locator(".messages .msg.theirs .author")).to_have_text(["Bob"])

    # Typing shows on the other side and clears when the message arrives.
    await ana.locator("#composer").fill("are you there?")
    await expect(bob.locator(".typing")).to_have_text("Ana is typing…")
    await ana.locator("#composer").press("Enter")
    await expect(bodies(bob)).to_have_text(["hello bob", "hi ana", "are you there?"])
    await expect(bob.locator(".typing")).to_have_text("")
    # Bob has the conversation open, so he read it: Ana sees "Seen" under her last message.
    await expect(ana.locator(".messages .msg.mine").last.locator(".seen")).to_have_text("Seen")

    # Bob moves to another conversation; Ana's messages count up on the DM's badge.
    await bob.get_by_role("button", name="New group").click()
    await bob.locator("#group-title").fill("side room")
    await bob.locator("#group-members").fill(ana_name)
    await bob.get_by_role("button", name="Create group").click()
    await expect(bob.locator("#chat-title")).to_have_text("side room")
    await send(ana, "one")
    await expect(bob_dm.locator(".badge")).to_have_text("1")
    await expect(bob_dm.locator(".preview")).to_have_text("one")
    await send(ana, "two")
    await expect(bob_dm.locator(".badge")).to_have_text("2")
    await expect(ana.locator(".messages .msg.mine").last.locator(".seen")).to_have_count(0)
    # Most recent activity first.
    await expect(bob.locator(".conv .conv-title")).to_have_text(["Ana", "side room"])
    await bob_dm.click()
    await expect(bob_dm.locator(".badge")).to_have_count(0)
    await expect(bodies(bob)).to_have_text(["hello bob", "hi ana", "are you there?", "one", "two"])
    await expect(ana.locator(".messages .msg.mine").last.locator(".seen")).to_have_text("Seen")
    # Ana's page sees the group Bob made, too.
    await expect(ana.locator(".conv", has_text="side room")).to_be_visible()
    assert contexts.errors == []
    assert contexts.dialogs == []


async def test_group_of_three_same_order_everywhere(
    chat_server: DevServer, contexts: Contexts, api: Api
) -> None:
    ana, bob, cyd = [await api.register(unique_name(p)) for p in ("ana", "bob", "cyd")]
    pages: list[Page] = []
    for who in (ana, bob, cyd):
        page = await contexts.page(chat_server.url)
        await login(page, who)
        pages.append(page)
    owner, second, third = pages

    # The owner creates the group with Bob, then adds Cyd from the members dialog.
    await owner.get_by_role("button", name="New group").click()
    await owner.locator("#group-title").fill("trio")
    await owner.locator("#group-members").fill(bob.username)
    await owner.get_by_role("button", name="Create group").click()
    await expect(owner.locator("#chat-title")).to_have_text("trio")
    await expect(owner.locator(".chat-sub")).to_have_text("2 members")
    await owner.get_by_role("button", name="Members").click()
    await owner.get_by_label("Username to add").fill(cyd.username)
    await owner.get_by_role("button", name="Add member").click()
    await expect(owner.locator("dialog .member-list li")).to_have_count(3)
    await owner.get_by_role("button", name="Close").click()
    await expect(owner.locator(".chat-sub")).to_have_text("3 members")

    for page in (second, third):
        await page.locator(".conv", has_text="trio").click()
        await expect(page.locator("#chat-title")).to_have_text("trio")

    # Turns, then everyone at once: every page ends with the same order as the server's.
    await send(owner, "owner 1")
    await expect(bodies(third)).to_have_text(["owner 1"])
    await send(second, "second 1")
    await expect(bodies(owner)).to_have_text(["owner 1", "second 1"])
    await send(third, "third 1")
    await expect(bodies(second)).to_have_text(["owner 1", "second 1", "third 1"])
    await asyncio.gather(*(send(page, f"burst {i}") for i, page in enumerate(pages)))
    history = await api.history(ana, await _group_id(owner))
    expected = [m["body"] for m in history]
    assert len(expected) == 6
    for page in pages:
        await expect(bodies(page)).to_have_text(expected)
        await expect(page.locator(".messages .msg.pending")).to_have_count(0)
    assert contexts.errors == []


async def _group_id(page: Page) -> str:
    conv_id = await page.locator(".conv[aria-current=true]").get_attribute("data-conv-id")
    assert conv_id
    return conv_id


async def test_markup_in_messages_is_text(
    chat_server: DevServer, contexts: Contexts, api: Api
) -> None:
    payload = "<img src=x onerror=alert(1)>"
    ana, bob = await api.register(unique_name("ana")), await api.register(unique_name("bob"))
    mallory = await contexts.page(chat_server.url)
    victim = await contexts.page(chat_server.url)
    await login(mallory, ana)
    await login(victim, bob)
    await open_dm(mallory, bob.username)
    await send(mallory, payload)
    cid = await _group_id(mallory)
    await api.send(ana, cid, "<script>alert(2)</script><b>bold?</b>")

    await expect(victim.locator(".conv .preview")).to_have_text(
        "<script>alert(2)</script><b>bold?</b>"
    )
    await victim.locator(".conv", has_text=ana.username).click()
    await expect(bodies(victim)).to_have_text([payload, "<script>alert(2)</script><b>bold?</b>"])
    for page in (mallory, victim):
        await expect(page.locator(".messages img, .messages script, .messages b")).to_have_count(0)
    # An edit carrying markup stays text too.
    await mallory.locator(".messages .msg.mine").first.hover()  # actions show on hover
    await mallory.locator(".messages .msg.mine .edit").first.click()
    await mallory.locator("#composer").fill('<a href="javascript:alert(3)">edited</a>')
    await mallory.locator("#composer").press("Enter")
    await expect(bodies(victim).first).to_have_text('<a href="javascript:alert(3)">edited</a>')
    await expect(victim.locator(".messages .msg .edited").first).to_have_text("edited")
    await expect(victim.locator(".messages a")).to_have_count(0)
    assert contexts.dialogs == []
    assert contexts.errors == []


async def test_bad_input_is_refused_in_the_ui_and_nothing_is_sent(
    chat_server: DevServer, contexts: Contexts, api: Api
) -> None:
    ana, bob = await api.register(unique_name("ana")), await api.register(unique_name("bob"))
    page = await contexts.page(None)
    frames = sent_frames(page)
    await page.goto(chat_server.url)
    await login(page, ana)

    missing = unique_name("nobody")
    await page.locator("#dm-username").fill(missing)
    await page.get_by_role("button", name="Message", exact=True).click()
    await expect(page.locator("#dm-error")).to_have_text(f"There is no user named “{missing}”.")
    await expect(page.locator(".conv")).to_have_count(0)

    await open_dm(page, bob.username)
    composer = page.locator("#composer")
    await composer.press("Enter")
    await expect(page.locator("#composer-error")).to_have_text("The message is empty.")
    await composer.fill("   \n  ")
    await page.get_by_role("button", name="Send").click()
    await expect(page.locator("#composer-error")).to_have_text("The message is empty.")

    await composer.fill("x" * 4001)
    await expect(page.locator(".counter")).to_have_text("4001/4000")
    await composer.press("Enter")
    await expect(page.locator("#composer-error")).to_have_text(
        "The message is too long (4001 of at most 4000 characters)."
    )
    await expect(composer).to_have_value("x" * 4001)  # kept, so it can be shortened

    # The same refusals, translated.
    await page.locator(".settings summary").click()
    await page.locator("#pref-lang").select_option("pt-BR")
    await page.locator(".conv").first.click()
    await page.locator("#composer").press("Enter")
    await expect(page.locator("#composer-error")).to_have_text("A mensagem está vazia.")
    await page.locator("#dm-username").fill(missing)
    await page.get_by_role("button", name="Conversar").click()
    await expect(page.locator("#dm-error")).to_have_text(f"Não existe usuário chamado “{missing}”.")

    # A valid message goes out; it is the only send the page ever made.
    await page.locator("#composer").fill("x" * 4000)
    await page.locator("#composer").press("Enter")
    await expect(page.locator(".messages .msg:not(.pending) .body")).to_have_text(["x" * 4000])
    sends = [f for f in frames if f.get("type") == "send"]
    assert [f["body"] for f in sends] == ["x" * 4000]
    history = await api.history(bob, await _group_id(page))
    assert [m["body"] for m in history] == ["x" * 4000]
