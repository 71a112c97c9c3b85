"""The real `chatcluster` command in subprocesses: help, dev serving, restart on the same data
directory keeping accounts and messages, clean shutdown on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.fixtures import free_port

PY = [sys.executable, "-m", "chat"]


@pytest.mark.parametrize("sub", ["dev", "api", "ws", "worker", "migrate"])
def test_every_subcommand_has_help(sub: str) -> None:
    out = subprocess.run([*PY, sub, "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    assert "usage: chatcluster" in out.stdout


def test_top_level_help_lists_subcommands() -> None:
    out = subprocess.run([*PY, "--help"], capture_output=True, text=True, timeout=60)
    for sub in ("dev", "api", "ws", "worker", "migrate", "operator"):
        assert sub in out.stdout


def test_the_local_cluster_is_dev_tooling_not_a_subcommand() -> None:
    """The shipped CLI has no `devcluster`: it lives in tools/ (`python -m tools.devcluster`,
    `make devcluster`), outside the wheel and the image."""
    out = subprocess.run([*PY, "devcluster"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "invalid choice: 'devcluster'" in out.stderr
    root = Path(__file__).resolve().parents[2]
    dev = subprocess.run(
        [sys.executable, "-m", "tools.devcluster", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=root,
    )
    assert dev.returncode == 0
    assert dev.stdout.startswith("usage: python -m tools.devcluster")


def test_cluster_parts_refuse_to_start_without_dependencies() -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("REDIS_URL", "POSTGRES_DSN", "MONGODB_URI", "CHAT_JWT_SECRET")
    }
    out = subprocess.run([*PY, "api"], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 2
    assert "REDIS_URL" in out.stderr
    assert "POSTGRES_DSN" in out.stderr


def _start_dev(data: Path, port: int, **env: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [*PY, "dev", "--data-dir", str(data), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **env} if env else None,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        time.sleep(0.1)
    proc.kill()
    pytest.fail("dev server did not become healthy")


def test_dev_serves_and_keeps_data_across_restart(tmp_path: Path) -> None:
    port = free_port()
    proc = _start_dev(tmp_path, port)
    base = f"http://127.0.0.1:{port}"
    try:
        assert "<html" in httpx.get(base + "/").text
        r = httpx.post(
            base + "/api/v1/auth/register",
            json={"username": "persisted", "password": "long enough"},
        )
        assert r.status_code == 201
        token = r.json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        cid = httpx.post(
            base + "/api/v1/conversations", headers=auth, json={"kind": "group", "title": "notes"}
        ).json()["id"]
        sent = httpx.post(
            base + f"/api/v1/conversations/{cid}/messages",
            headers=auth,
            json={"client_id": "k1", "body": "survives restarts"},
        )
        assert sent.status_code == 201
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert f"running at http://127.0.0.1:{port}/" in out
    assert "serving on the uvloop event loop" in out  # CHAT_EVENT_LOOP's default
    proc = _start_dev(tmp_path, port)
    try:
        # Same data directory: the signing key, the session and the message are all still there.
        history = httpx.get(base + f"/api/v1/conversations/{cid}/messages", headers=auth)
        assert history.status_code == 200
        assert [m["body"] for m in history.json()["messages"]] == ["survives restarts"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


def test_event_loop_is_chosen_by_chat_event_loop(tmp_path: Path) -> None:
    port = free_port()
    proc = _start_dev(tmp_path, port, CHAT_EVENT_LOOP="asyncio")
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "serving on the asyncio event loop" in out
    refused = subprocess.run(
        [*PY, "dev", "--data-dir", str(tmp_path), "--port", str(port)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "CHAT_EVENT_LOOP": "tokio"},
    )
    assert refused.returncode != 0
    assert "CHAT_EVENT_LOOP='tokio' is invalid" in refused.stderr


async def test_sigterm_drains_sockets_with_1012(tmp_path: Path) -> None:
    from tests.support.clients import Api, Ws

    port = free_port()
    proc = _start_dev(tmp_path, port)
    try:
        api = Api(f"http://127.0.0.1:{port}")
        alice = await api.register()
        await api.close()
        ws = await Ws.connect(f"ws://127.0.0.1:{port}/ws", f"http://127.0.0.1:{port}")
        await ws.auth(alice.access)
        proc.send_signal(signal.SIGTERM)
        assert await ws.wait_closed(15) == 1012
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0


async def test_sigkill_loses_no_acked_message(tmp_path: Path) -> None:
    """Guarantee 1 in embedded mode: every message acked before a SIGKILL is there after a
    restart on the same data directory, exactly once and in order."""
    from tests.support.clients import Api, Ws

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _start_dev(tmp_path, port)
    api = Api(base)
    alice, bob = await api.register(), await api.register()
    cid = await api.dm(alice, bob)
    ws = await Ws.connect(f"ws://127.0.0.1:{port}/ws", base)
    await ws.auth(alice.access)
    # Fire sends without waiting, then kill the process while some are still in flight.
    for i in range(60):
        await ws.send(
            {
                "type": "send",
                "ref": i,
                "conversation_id": cid,
                "client_id": f"k{i}",
                "body": f"durable {i}",
            }
        )
        if i == 15:
            await ws.wait(lambda f: f.get("type") == "ack" and f.get("ref") == 10)
    await ws.wait(lambda f: f.get("type") == "ack" and f.get("ref") == 15)
    proc.kill()
    proc.communicate(timeout=30)
    await ws.wait_closed()
    acked = sorted(f["seq"] for f in ws.frames if f.get("type") == "ack")
    assert len(acked) >= 16
    proc = _start_dev(tmp_path, port)
    try:
        history = await api.history(bob, cid, limit=100)
        seqs = [m["seq"] for m in history]
        assert set(acked) <= set(seqs)
        assert seqs == list(range(1, len(seqs) + 1))  # no gaps, no duplicates
        assert [m["body"] for m in history] == [f"durable {s - 1}" for s in seqs]
    finally:
        await api.close()
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
