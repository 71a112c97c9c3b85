"""A platform team's path, end to end on a real node: `helm install` the operator chart,
`kubectl apply` a ChatCluster with an Ingress host, and then two people chat in Chromium
through the ingress controller (Traefik), in a DM and a group, and their history survives a
reload. Every pod here is real: the migration Job, API, gateway, worker, operator, Redis,
PostgreSQL and FerretDB all run in containerd on this machine."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets
from playwright.async_api import Browser, async_playwright, expect

from tests.browser.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    Contexts,
    open_dm,
    register,
    send,
    unique_name,
)
from tests.k8s.support import OPERATOR_NAMESPACE, RELEASE, condition
from tests.realnode import services
from tests.realnode.conftest import Deployed
from tests.realnode.node import INGRESS_PORT, NODE_IP
from tests.realnode.traffic import ORIGIN, WS_URL, ingress_api
from tests.support.clients import Ws

pytestmark = [pytest.mark.realnode, pytest.mark.timeout(900)]

URL = f"http://{services.HOST}/"


@pytest.fixture
async def ingress_browser() -> AsyncIterator[Browser]:
    """Chromium that resolves the Ingress host to the node, as DNS would in production."""
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {services.HOST} {NODE_IP}"],
        )
        yield browser
        await browser.close()


def test_everything_the_user_applied_is_running(deployed: Deployed) -> None:
    """What `kubectl get` shows a platform engineer after `kubectl apply`."""
    chc = deployed.chat_cluster()
    assert condition(chc, "Ready")["status"] == "True"  # type: ignore[index]
    table = deployed.kubectl("get", "chc", "-n", services.NAMESPACE)
    assert "True" in table.splitlines()[1], table
    pods = deployed.get("pods")["items"]
    running = {
        p["metadata"]["labels"].get("app.kubernetes.io/component")
        for p in pods
        if p["status"]["phase"] == "Running"
        and all(c["ready"] for c in p["status"].get("containerStatuses", ()))
    }
    assert {"api", "websocket", "worker"} <= running, running
    # The migration ran as a pod of its own and succeeded before any workload started.
    jobs = deployed.get("jobs")["items"]
    assert [j["status"].get("succeeded") for j in jobs] == [1], json.dumps(jobs)[:2000]
    # The operator itself is a pod from the chart, under the chart's ServiceAccount.
    operator = deployed.node.cp.get_json("pods", "-n", OPERATOR_NAMESPACE)["items"]
    assert operator and {p["spec"]["serviceAccountName"] for p in operator} == {RELEASE}
    assert all(p["status"]["phase"] == "Running" for p in operator)
    # The Ingress is served by the real controller, which published the node's address.
    ingress = deployed.get("ingress", services.CLUSTER)
    assert ingress["status"]["loadBalancer"]["ingress"] == [{"ip": NODE_IP}]


async def test_spec_settings_reach_the_app_through_the_ingress(deployed: Deployed) -> None:
    """`spec.auth.accessTokenTTLSeconds` becomes the lifetime of the tokens the API issues,
    and the public URL derived from the Ingress host is the origin the gateways accept."""
    api = ingress_api()
    try:
        account = await api.register()
        claims = jwt_claims(account.access)
        assert claims["exp"] - claims["iat"] == services.ACCESS_TTL_S
        ws = await Ws.connect(WS_URL, ORIGIN, host=NODE_IP, port=INGRESS_PORT)
        await ws.auth(account.access)
        await ws.close()
        with pytest.raises(websockets.InvalidStatus) as refused:
            await Ws.connect(WS_URL, "http://evil.test", host=NODE_IP, port=INGRESS_PORT)
        assert refused.value.response.status_code == 403
    finally:
        await api.close()


def jwt_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


async def test_two_people_chat_through_the_ingress(
    deployed: Deployed, ingress_browser: Browser
) -> None:
    contexts = Contexts(ingress_browser)
    try:
        ana_name, bob_name = unique_name("ana"), unique_name("bob")
        ana = await contexts.page(URL)
        bob = await contexts.page(URL)
        await register(ana, ana_name, "Ana")
        await register(bob, bob_name, "Bob")

        await open_dm(ana, bob_name, "Bob")
        await send(ana, "hello through the ingress")
        bob_dm = bob.locator(".conv", has_text="Ana")
        await expect(bob_dm.locator(".badge")).to_have_text("1")
        await bob_dm.click()
        bodies_bob = bob.locator(".messages .msg .body")
        await expect(bodies_bob).to_have_text(["hello through the ingress"])
        await send(bob, "loud and clear")
        bodies_ana = ana.locator(".messages .msg .body")
        await expect(bodies_ana).to_have_text(["hello through the ingress", "loud and clear"])

        await bob.get_by_role("button", name="New group").click()
        await bob.locator("#group-title").fill("node room")
        await bob.locator("#group-members").fill(ana_name)
        await bob.get_by_role("button", name="Create group").click()
        await expect(bob.locator("#chat-title")).to_have_text("node room")
        await send(bob, "the group works too")
        await ana.locator(".conv", has_text="node room").click()
        await expect(bodies_ana).to_have_text(["the group works too"])

        # History comes back from the cluster's stores after a reload.
        await ana.reload()
        await ana.locator(".conv", has_text="Bob").click()
        await expect(bodies_ana).to_have_text(["hello through the ingress", "loud and clear"])
        await ana.locator(".conv", has_text="node room").click()
        await expect(bodies_ana).to_have_text(["the group works too"])
        assert contexts.errors == []
        assert contexts.dialogs == []
    finally:
        await contexts.close()

    # It really went through the ingress controller: Traefik's access log has the API calls
    # routed to the api Service and the WebSockets routed to the ws Service (their status is
    # logged as 0: the connection is hijacked once upgraded).
    access = deployed.node.logs("traefik", 5000).splitlines()
    router = f"{services.NAMESPACE}-{services.CLUSTER}-{services.HOST.replace('.', '-')}"
    api_router, ws_router = f'"{router}@kubernetes"', f'"{router}-ws@kubernetes"'
    assert any(
        '"POST /api/v1/auth/register HTTP/1.1" 201' in line and api_router in line
        for line in access
    )
    assert any('"GET /ws HTTP/1.1"' in line and ws_router in line for line in access)
    # And nothing tried to leave the machine.
    assert deployed.node.net.dropped_packets() == 0
