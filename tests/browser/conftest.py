"""Browser fixtures: Debian's Chromium driven by Playwright (no downloaded browsers) against a
real `chatcluster dev` server started as a subprocess on a free port.

The fixtures skip on a laptop without /usr/bin/chromium but fail under CI=true, so CI can never
pass by skipping.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    Dialog,
    Page,
    WebSocket,
    async_playwright,
    expect,
)

from tests.support.clients import Account, Api
from tests.support.fixtures import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
REPO = Path(__file__).resolve().parents[2]
PYTHON = REPO / ".venv" / "bin" / "python"
START_TIMEOUT_S = 30.0
PASSWORD = "correct horse battery"

# Auto-waiting assertions get a bound long enough for a loaded 2-core machine.
expect.set_options(timeout=10_000)


class DevServer:
    """`python -m chat dev` in a subprocess; can be SIGKILLed and started again on the same data
    directory and port."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}-server.log"
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    async def start(self) -> None:
        self.starts += 1
        log = self.log_path.open("ab")
        try:
            self.proc = subprocess.Popen(
                [
                    str(PYTHON),
                    "-m",
                    "chat",
                    "dev",
                    "--data-dir",
                    str(self.data_dir),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                ],
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        finally:
            log.close()
        await self._wait_banner()

    async def _wait_banner(self) -> None:
        """Bounded poll of the log for this start's banner (the server prints it once it
        listens)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-2000:]}")
            text = self.log_path.read_text(errors="replace")
            if text.count("running at") >= self.starts:
                return
            await asyncio.sleep(0.05)
        raise TimeoutError(f"server did not start: {self.log_path.read_text()[-2000:]}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{CHROMIUM} is required under CI=true (scripts/setup.d/10-apt.sh)")
    pytest.skip(f"{CHROMIUM} not installed")


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    _require_chromium()
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


async def start_dev(tmp: Path) -> DevServer:
    _require_chromium()
    server = DevServer(tmp / "data", free_port())
    await server.start()
    return server


@pytest.fixture(scope="module")
async def chat_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DevServer]:
    server = await start_dev(tmp_path_factory.mktemp("browser"))
    yield server
    server.stop()


@pytest.fixture
async def api(chat_server: DevServer) -> AsyncIterator[Api]:
    client = Api(chat_server.url.rstrip("/"))
    yield client
    await client.close()


class Contexts:
    """Browser contexts (one per simulated person) closed at the end of the test."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.opened: list[BrowserContext] = []
        self.dialogs: list[str] = []  # any alert/confirm/prompt is a bug (or an injection)
        self.errors: list[str] = []  # uncaught page errors and console errors

    async def page(self, url: str | None, **options: object) -> Page:
        """A new person's page; `url=None` leaves it blank so listeners can be attached
        before the first load."""
        options.setdefault("viewport", {"width": 1200, "height": 800})
        options.setdefault("locale", "en-US")
        context = await self.browser.new_context(**options)  # type: ignore[arg-type]
        self.opened.append(context)
        page = await context.new_page()
        page.on("dialog", self._on_dialog)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on(
            "console",
            lambda msg: self.errors.append(f"console: {msg.text}") if msg.type == "error" else None,
        )
        if url is not None:
            await page.goto(url)
        return page

    async def _on_dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        await dialog.dismiss()

    async def close(self) -> None:
        for context in self.opened:
            await context.close()


@pytest.fixture
async def contexts(browser: Browser) -> AsyncIterator[Contexts]:
    opened = Contexts(browser)
    yield opened
    await opened.close()


_counter = iter(range(1, 1_000_000))


def unique_name(prefix: str) -> str:
    return f"{prefix}{next(_counter)}{os.getpid() % 1000}t{int(time.time()) % 100000}"


async def register(page: Page, username: str, display_name: str | None = None) -> None:
    """Create an account through the UI and wait for the signed-in shell."""
    await page.get_by_role("button", name="No account yet? Create one").click()
    await page.locator("#auth-username").fill(username)
    await page.locator("#auth-password").fill(PASSWORD)
    if display_name:
        await page.locator("#auth-display").fill(display_name)
    await page.get_by_role("button", name="Create account", exact=True).click()
    await expect(page.locator(".top .me")).to_contain_text(display_name or username)


async def open_dm(page: Page, username: str, title: str | None = None) -> None:
    await page.locator("#dm-username").fill(username)
    await page.get_by_role("button", name="Message", exact=True).click()
    await expect(page.locator("#chat-title")).to_have_text(title or username)
    await expect(page.locator("#composer")).to_be_visible()


async def send(page: Page, text: str) -> None:
    await page.locator("#composer").fill(text)
    await page.locator("#composer").press("Enter")


async def login(page: Page, account: Account) -> None:
    await page.locator("#auth-username").fill(account.username)
    await page.locator("#auth-password").fill(account.password)
    await page.locator(".auth-form button[type=submit]").click()
    await expect(page.locator(".top .me")).to_contain_text(account.username)


def sent_frames(page: Page) -> list[dict[str, object]]:
    """Every WebSocket frame the page sends from now on (attach before the page loads)."""
    frames: list[dict[str, object]] = []

    def on_socket(ws: WebSocket) -> None:
        ws.on("framesent", lambda payload: frames.append(json.loads(payload)))

    page.on("websocket", on_socket)
    return frames
