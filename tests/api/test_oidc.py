"""Sign in with an OpenID Provider, end to end against a real, certified provider
(panva/oidc-provider on Node.js, installed by scripts/setup.d/25-oidc-provider.sh): the
authorization code flow with PKCE, ID-token checks, account linking, and refusals."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.support.fixtures import Server, ServerFactory, free_port

ROOT = Path(__file__).resolve().parents[2]
PROVIDER_DIR = ROOT / "tests" / "oidc_provider"


def _provider_modules() -> Path:
    cache = Path(os.environ.get("CHATCLUSTER_CACHE", "/var/cache/chatcluster"))
    key = hashlib.sha256((PROVIDER_DIR / "package-lock.json").read_bytes()).hexdigest()[:12]
    return cache / f"oidc-provider-{key}" / "node_modules"


class Provider:
    def __init__(self, chat_port: int) -> None:
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.redirect_uri = f"http://127.0.0.1:{chat_port}/api/v1/auth/oidc/callback"
        env = {
            **os.environ,
            "PORT": str(self.port),
            "REDIRECT_URI": self.redirect_uri,
            "NODE_PATH": str(_provider_modules()),
        }
        # Node resolves ES-module imports from the script's folder upwards, so run a copy of
        # the script next to the installed modules.
        script = _provider_modules().parent / "provider.mjs"
        shutil.copyfile(PROVIDER_DIR / "provider.mjs", script)
        self.proc = subprocess.Popen(
            ["node", str(script)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.issuer}/.well-known/openid-configuration").is_success:
                    return
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                out = self.proc.stdout.read() if self.proc.stdout else ""
                self.stop()
                pytest.fail(f"OpenID Provider did not start: {out}")
            time.sleep(0.1)

    def sign_in(self, authorize_url: str, login: str) -> str:
        """Act as the person in the browser: submit the provider's sign-in and consent forms.
        Returns the URL the provider sends the browser back to."""
        with httpx.Client() as browser:
            url = authorize_url
            for _ in range(10):
                r = browser.get(url)
                if r.is_redirect:
                    url = str(r.url.join(r.headers["location"]))
                    if url.startswith(self.redirect_uri):
                        return url
                    continue
                action, body = re.findall(
                    r'<form[^>]*action="([^"]+)"[^>]*>(.*?)</form>', r.text, re.S
                )[0]
                fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', body))
                if 'name="login"' in body:
                    fields.update(login=login, password="any")
                r = browser.post(action, data=fields)
                url = str(r.url.join(r.headers["location"]))
                if url.startswith(self.redirect_uri):
                    return url
        pytest.fail("sign-in did not come back to the relying party")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.communicate(timeout=10)


@pytest.fixture
def provider_and_port() -> Iterator[tuple[Provider, int]]:
    if not shutil.which("node") or not _provider_modules().is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail("node or the oidc-provider modules are missing (run scripts/setup.sh)")
        pytest.skip("OpenID Provider not installed")
    chat_port = free_port()
    provider = Provider(chat_port)
    yield provider, chat_port
    provider.stop()


def _fragment(location: str) -> dict[str, str]:
    assert location.startswith("/#"), location
    return {k: v[0] for k, v in parse_qs(location[2:]).items()}


async def _relying_party(make_server: ServerFactory, provider: Provider, port: int) -> Server:
    return await make_server(
        port=port,
        oidc_issuer=provider.issuer,
        oidc_client_id="chatcluster",
        oidc_client_secret="chatcluster-test-secret",
        oidc_display_name="Test IdP",
    )


async def test_sign_in_with_provider_creates_and_reuses_linked_user(
    provider_and_port: tuple[Provider, int], make_server: ServerFactory
) -> None:
    provider, port = provider_and_port
    server = await _relying_party(make_server, provider, port)
    info = (await server.api.http.get("/api/v1/auth/oidc")).json()
    assert info == {"enabled": True, "display_name": "Test IdP"}

    async def sign_in(login: str) -> dict[str, str]:
        start = await server.api.http.get("/api/v1/auth/oidc/login")
        assert start.status_code == 302
        authorize = start.headers["location"]
        query = parse_qs(urlsplit(authorize).query)
        assert query["code_challenge_method"] == ["S256"]
        assert "nonce" in query
        back = provider.sign_in(authorize, login)
        done = await server.api.http.get(back)
        assert done.status_code == 302
        return _fragment(done.headers["location"])

    first = await sign_in("Carol.Oidc")
    me = await server.api.http.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {first['access_token']}"}
    )
    assert me.status_code == 200
    user = me.json()
    assert user["username"] == "carol.oidc"
    assert user["display_name"] == "Person Carol.Oidc"
    again = await sign_in("Carol.Oidc")
    me2 = await server.api.http.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {again['access_token']}"}
    )
    assert me2.json()["id"] == user["id"]
    refreshed = await server.api.http.post(
        "/api/v1/auth/refresh", json={"refresh_token": again["refresh_token"]}
    )
    assert refreshed.status_code == 200
    # A linked user has no password: password login cannot reach the account.
    pw = await server.api.http.post(
        "/api/v1/auth/login", json={"username": "carol.oidc", "password": "!external"}
    )
    assert pw.status_code == 401


async def test_callback_refuses_forged_state_and_missing_cookie(
    provider_and_port: tuple[Provider, int], make_server: ServerFactory
) -> None:
    provider, port = provider_and_port
    server = await _relying_party(make_server, provider, port)
    start = await server.api.http.get("/api/v1/auth/oidc/login")
    back = provider.sign_in(start.headers["location"], "mallory")
    forged = back.replace("state=", "state=x")
    done = await server.api.http.get(forged)
    assert _fragment(done.headers["location"]) == {"login_error": "oidc_state"}
    # The cookie was consumed: replaying the genuine callback fails too.
    replay = await server.api.http.get(back)
    assert _fragment(replay.headers["location"]) == {"login_error": "oidc_state"}
    denied = await server.api.http.get(
        "/api/v1/auth/oidc/callback", params={"error": "access_denied"}
    )
    assert _fragment(denied.headers["location"]) == {"login_error": "oidc_denied"}


async def test_oidc_disabled_by_default(make_server: ServerFactory) -> None:
    server = await make_server()
    assert (await server.api.http.get("/api/v1/auth/oidc")).json()["enabled"] is False
    r = await server.api.http.get("/api/v1/auth/oidc/login")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "oidc_disabled"
