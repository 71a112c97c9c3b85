"""Single sign-on in the browser: the login page offers the provider when the server has one,
the whole redirect round trip through a real OpenID Provider ends signed in with the tokens
gone from the address bar, the session survives a reload, and a failed sign-in is explained."""

from __future__ import annotations

from playwright.async_api import expect

from tests.browser.conftest import Contexts
from tests.support.fixtures import ServerFactory
from tests.support.oidc_provider import Provider


async def test_sign_in_with_provider_round_trip(
    contexts: Contexts,
    provider_and_port: tuple[Provider, int],
    make_server: ServerFactory,
) -> None:
    provider, port = provider_and_port
    server = await make_server(port=port, **provider.relying_party_settings())
    home = f"http://127.0.0.1:{port}/"
    page = await contexts.page(home)

    sso = page.locator("#auth-sso")
    await expect(sso).to_have_text("Sign in with Test IdP")
    await sso.click()
    # The provider's own sign-in and consent pages (panva/oidc-provider's dev interactions).
    await page.locator("input[name=login]").fill("Dana.Sso")
    await page.locator("input[name=password]").fill("any")
    await page.locator("button[type=submit]").click()
    await page.locator("button[type=submit]").click()

    await expect(page.locator(".top .me")).to_contain_text("Person Dana.Sso")
    assert page.url == home  # the fragment with the tokens is gone
    await page.reload()
    await expect(page.locator(".top .me")).to_contain_text("Person Dana.Sso")
    user = await server.rt.chat.accounts.find_user("dana.sso")
    assert user.display_name == "Person Dana.Sso"
    # The provider's pages log failed loads of their external fonts (no internet here);
    # what matters is that no script threw and nothing opened a dialog.
    assert not [e for e in contexts.errors if e.startswith("pageerror")], contexts.errors
    assert not contexts.dialogs


async def test_failed_sign_in_is_explained_and_sso_hidden_without_provider(
    contexts: Contexts, make_server: ServerFactory
) -> None:
    server = await make_server()  # no provider configured
    home = f"http://127.0.0.1:{server.settings.port}/"
    page = await contexts.page(home + "#login_error=oidc_state")
    await expect(page.get_by_role("status")).to_have_text(
        "That sign-in expired or was started in another tab. Try again."
    )
    assert page.url == home
    await expect(page.locator("#auth-username")).to_be_visible()
    await expect(page.locator("#auth-sso")).to_have_count(0)
