"""Each subcommand, run from the built image as Kubernetes and docs/deploy.md run it."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin

from tests.image.support import APP_UID, RunContainer, Server, StartServer, run

pytestmark = [pytest.mark.image, pytest.mark.timeout(900)]

READY_DEADLINE_S = 60.0
# As docs/deploy.md runs it: browsers reach the published port as localhost:8000.
PUBLIC_URL = "http://localhost:8000"
# What the operator chart's pods set: readOnlyRootFilesystem, capabilities drop ALL,
# allowPrivilegeEscalation false.
POD_SECURITY = ["--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
SUBCOMMANDS = ["dev", "api", "ws", "worker", "migrate", "operator"]


def get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return int(resp.status), resp.read().decode()


def wait_healthy(server: Server, deadline_s: float = READY_DEADLINE_S) -> None:
    """Poll /healthz until it answers 200, within a bound; the logs explain a failure."""
    deadline = time.monotonic() + deadline_s
    last: object = None
    while time.monotonic() < deadline:
        try:
            status, _ = get(f"{server.url}/healthz", timeout=2.0)
            if status == 200:
                return
            last = status
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            last = exc
        time.sleep(0.2)
    pytest.fail(f"/healthz not ready after {deadline_s}s ({last!r})\n{server.logs()[-3000:]}")


@pytest.fixture(scope="module")
def dev_server(start_server: StartServer) -> Iterator[Server]:
    """`dev` as docs/deploy.md runs it (default command, read-only root, the public URL set),
    under the chart's pod securityContext: no capabilities, no privilege escalation."""
    options = [*POD_SECURITY, "--env", f"CHAT_PUBLIC_URL={PUBLIC_URL}"]
    with start_server(options=options) as server:
        wait_healthy(server)
        yield server


def test_dev_answers_healthz(dev_server: Server) -> None:
    status, body = get(f"{dev_server.url}/healthz")
    assert (status, body.strip()) == (200, '{"status":"ok"}')


def test_dev_serves_the_web_client(dev_server: Server) -> None:
    status, body = get(f"{dev_server.url}/")
    assert status == 200
    assert body.lstrip().lower().startswith("<!doctype html>")


def test_dev_websocket_accepts_the_public_origin_only(dev_server: Server) -> None:
    """The gateway checks Origin exactly; CHAT_PUBLIC_URL is what makes the browser path work."""
    url = dev_server.url.replace("http://", "ws://") + "/ws"
    with connect(url, origin=Origin(PUBLIC_URL), open_timeout=10) as ws:
        assert ws.protocol.state.name == "OPEN"
    with pytest.raises(InvalidStatus) as refused:
        connect(url, origin=Origin("http://elsewhere.example"), open_timeout=10)
    assert refused.value.response.status_code == 403


def test_dev_keeps_its_data_in_the_data_volume(dev_server: Server) -> None:
    listing = run(["podman", "exec", dev_server.name, "ls", "/data"]).stdout.split()
    assert "accounts.db" in listing
    assert "messages.db" in listing


def test_every_process_runs_as_the_app_user_without_capabilities(dev_server: Server) -> None:
    script = (
        "import os\n"
        "pids = [p for p in os.listdir('/proc') if p.isdigit()]\n"
        "uids = {os.stat(f'/proc/{p}').st_uid for p in pids}\n"
        "caps = {line.split()[1] for p in pids for line in open(f'/proc/{p}/status')\n"
        "        if line.startswith('CapEff:')}\n"
        "print(sorted(uids), sorted(caps))\n"
    )
    out = run(["podman", "exec", dev_server.name, "python3", "-c", script]).stdout.strip()
    assert out == f"[{APP_UID}] ['0000000000000000']"


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_subcommand_help(run_container: RunContainer, command: str) -> None:
    proc = run_container(command, "--help", options=["--read-only"])
    assert proc.stdout.startswith(f"usage: chatcluster {command}"), proc.stdout[:300]


def test_version(run_container: RunContainer) -> None:
    assert run_container("--version").stdout.strip() == "chatcluster 0.1.0"


def test_sigterm_stops_dev_gracefully(start_server: StartServer) -> None:
    """tini passes SIGTERM on; a container that needed SIGKILL would exit 137."""
    with start_server(options=["--read-only"]) as server:
        wait_healthy(server)
        run(["podman", "stop", "--time", "20", server.name])
        code = run(["podman", "inspect", "--format", "{{.State.ExitCode}}", server.name])
        assert int(code.stdout) in (0, 143), server.logs()[-2000:]
