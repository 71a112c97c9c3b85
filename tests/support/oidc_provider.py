"""A real, certified OpenID Provider for tests (panva/oidc-provider on Node.js, installed by
scripts/setup.d/25-oidc-provider.sh), on a free port, registered with chatcluster as client
`chatcluster` whose redirect URI points at the chat server's port."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tools.harness.net import free_port
from tools.harness.versions import cache_dir

ROOT = Path(__file__).resolve().parents[2]
PROVIDER_DIR = ROOT / "tests" / "oidc_provider"


def _provider_modules() -> Path:
    cache = cache_dir()
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

    def relying_party_settings(self) -> dict[str, str]:
        """chatcluster's OIDC settings for this provider (its client registration)."""
        return {
            "oidc_issuer": self.issuer,
            "oidc_client_id": "chatcluster",
            "oidc_client_secret": "chatcluster-test-secret",
            "oidc_display_name": "Test IdP",
        }

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
