"""Health, readiness, metrics (on the internal listener) and the OpenAPI document."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import tornado.httpserver
import tornado.web

from chat.api.routes import API_HANDLERS, OPS_HANDLERS
from chat.config import Settings
from chat.server import start
from tests.support.fixtures import Server, ServerFactory, free_port

METHODS = ("get", "post", "put", "patch", "delete")


async def test_health_ready_metrics(make_server: ServerFactory) -> None:
    port = free_port()
    server = await make_server(metrics_port=port)  # production's internal listener
    assert (await server.api.http.get("/healthz")).json() == {"status": "ok"}
    ready = await server.api.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"sqlite": "ok"}
    a, b = await server.api.register(), await server.api.register()
    cid = await server.api.dm(a, b)
    wb = await server.ws(b)
    await server.api.send(a, cid, "counted")
    await wb.wait(lambda f: f.get("body") == "counted")
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    for name in (
        "chat_ws_connections",
        "chat_ws_frames_in_total",
        "chat_ws_frames_out_total",
        "chat_deliveries_total",
        "chat_send_to_deliver_seconds_bucket",
        "chat_errors_total",
        "chat_http_requests_total",
    ):
        assert name in text, name
    deliveries = re.search(r"^chat_deliveries_total (\S+)$", text, re.M)
    assert deliveries and float(deliveries.group(1)) >= 1
    await wb.close()


def _implemented(handler: type[tornado.web.RequestHandler]) -> set[str]:
    return {m for m in METHODS if getattr(handler, m) is not getattr(tornado.web.RequestHandler, m)}


async def test_openapi_documents_exactly_the_routes(server: Server) -> None:
    doc = (await server.api.http.get("/openapi.json")).json()
    assert doc["openapi"] == "3.1.0"
    served = {h.route: _implemented(h) for h in (*API_HANDLERS, *OPS_HANDLERS)}
    documented = {path: set(ops) for path, ops in doc["paths"].items()}
    assert documented == served
    # Every documented route answers (not the JSON 404 for unknown routes).
    for path, methods in documented.items():
        url = re.sub(r"\{[^}]+\}", "x", path)
        for method in methods:
            r = await server.api.http.request(method.upper(), url)
            assert not (r.status_code == 404 and r.json()["error"]["code"] == "not_found"), (
                method,
                path,
            )
    refs = re.findall(r'"\$ref": ?"#/components/schemas/(\w+)"', str(doc).replace("'", '"'))
    assert set(refs) <= set(doc["components"]["schemas"])


async def test_unknown_route_is_json_404(server: Server) -> None:
    r = await server.api.http.get("/api/v1/nothing-here")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = await server.api.http.put("/api/v1/me")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"


async def test_web_client_is_served(server: Server) -> None:
    r = await server.api.http.get("/")
    assert r.status_code == 200 and "<html" in r.text
    assert "default-src 'self'" in r.headers["Content-Security-Policy"]


async def test_metrics_only_on_the_internal_port(tmp_path: Path) -> None:
    """What the Ingress routes (the public port) has no /metrics; CHAT_METRICS_PORT has."""
    port, metrics_port = free_port(), free_port()
    settings = Settings(data_dir=tmp_path, port=port, metrics_port=metrics_port)
    running = await start(settings, api=True, gateway=True, web=False, worker=False)
    try:
        async with httpx.AsyncClient() as http:
            public = await http.get(f"http://127.0.0.1:{port}/metrics")
            assert public.status_code == 404
            assert public.json()["error"]["code"] == "not_found"
            internal = await http.get(f"http://127.0.0.1:{metrics_port}/metrics")
            assert internal.status_code == 200
            assert "chat_ws_connections" in internal.text
            assert internal.headers["Content-Type"].startswith("text/plain")
            assert (await http.get(f"http://127.0.0.1:{metrics_port}/healthz")).status_code == 404
            doc = (await http.get(f"http://127.0.0.1:{port}/openapi.json")).json()
            assert "/metrics" not in doc["paths"]
    finally:
        await running.stop()

    disabled = Settings(data_dir=tmp_path / "off", port=free_port(), metrics_port=0)
    running = await start(disabled, api=True, gateway=False, web=False, worker=False)
    try:
        assert running.metrics is None
    finally:
        await running.stop()
