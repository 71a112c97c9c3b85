"""Smoke test of the benchmark harness (bench/): the compiled load generator against a tiny
in-test server that speaks chatcluster's frames, driven through its stdin/stdout line
protocol as bench/driver.py drives it. Seconds, loopback only, bounded by the plan.

It needs the load generator already built (`bash bench/setup/loadgen.sh`, or any
`python -m bench.compare` run); without it the test is skipped: `make test` never builds Go.
The report tests need nothing."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest
import tornado.web
import tornado.websocket

from bench import report
from bench.driver import Row

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "bench" / "loadgen"
CACHE = Path(os.environ.get("CHATCLUSTER_CACHE", "/var/cache/chatcluster"))


def loadgen_binary() -> Path:
    """Where bench/setup/loadgen.sh puts this version of the sources (same hash)."""
    files = [SRC / "go.mod", SRC / "go.sum", *sorted(SRC.glob("*.go"))]
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()[:12]
    return CACHE / "bench" / f"loadgen-{digest}" / "loadgen"


needs_loadgen = pytest.mark.skipif(
    not loadgen_binary().exists(), reason="load generator not built (bash bench/setup/loadgen.sh)"
)


class Room(tornado.websocket.WebSocketHandler):
    """auth -> ready (the token names the room); send -> ack, and the message to the room.
    With `drop_every` = k > 0 it skips every k-th delivery, to prove the count is checked."""

    def initialize(self, rooms: dict[str, set[Room]], drop_every: int, sent: list[int]) -> None:
        self.rooms, self.drop_every, self.sent, self.room = rooms, drop_every, sent, ""

    def check_origin(self, origin: str) -> bool:
        return True

    def on_message(self, message: str | bytes) -> None:
        frame = json.loads(message)
        if frame["type"] == "auth":
            self.room = frame["token"]
            self.rooms.setdefault(self.room, set()).add(self)
            self.write_message(json.dumps({"type": "ready", "ref": frame.get("ref")}))
        elif frame["type"] == "send":
            self.write_message(json.dumps({"type": "ack", "ref": frame["ref"]}))
            out = json.dumps({"type": "message", "body": frame["body"]})
            for peer in list(self.rooms[frame["conversation_id"]]):
                self.sent[0] += 1
                if not (self.drop_every and self.sent[0] % self.drop_every == 0):
                    peer.write_message(out)

    def on_close(self) -> None:
        self.rooms.get(self.room, set()).discard(self)


async def run_loadgen(tmp_path: Path, drop_every: int, urls: str = "") -> dict[str, Any]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    rooms: dict[str, set[Room]] = {}
    app = tornado.web.Application(
        [(r"/ws", Room, {"rooms": rooms, "drop_every": drop_every, "sent": [0]})]
    )
    server = app.listen(port, address="127.0.0.1")
    url = urls or f"ws://127.0.0.1:{port}/ws"
    plan = {
        "protocol": "chat",
        "mode": "fanout",
        "origin": "",
        "sockets": [{"url": url, "token": f"r{k // 10}", "room": f"r{k // 10}"} for k in range(20)],
        "rate": 50,
        "warmup_s": 0.2,
        "window_s": 1.0,
        "drain_s": 3.0,
        "body_bytes": 64,
        "open_concurrency": 8,
        "nonce": "t",
    }
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    proc = await asyncio.create_subprocess_exec(
        str(loadgen_binary()),
        "-plan",
        str(tmp_path / "plan.json"),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        events: list[dict[str, Any]] = []
        for answer in ("go", "ok", None):
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            if not line:
                break
            events.append(json.loads(line))
            if answer:
                proc.stdin.write(answer.encode() + b"\n")
                await proc.stdin.drain()
        await asyncio.wait_for(proc.wait(), 30)
        err = (await proc.stderr.read()).decode() if proc.stderr else ""
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        server.stop()
        await server.close_all_connections()
    return {"events": events, "code": proc.returncode, "stderr": err}


@needs_loadgen
async def test_every_delivery_counted_with_latency(tmp_path: Path) -> None:
    out = await run_loadgen(tmp_path, drop_every=0)
    assert out["code"] == 0, out["stderr"]
    assert [e["event"] for e in out["events"]] == ["ready", "drained", "result"]
    result = out["events"][-1]
    # 50 msg/s for 1 s, each into a room of 10 sockets (sender included).
    assert result["sent"] == 50 and result["expected"] == 500
    assert result["received"] == 500 and result["missing"] == 0 and result["duplicates"] == 0
    assert result["all_delivered"] is True
    assert result["acks"] == 50
    assert 0 <= result["p50_ms"] <= result["p99_ms"]


@needs_loadgen
async def test_a_lost_delivery_is_reported(tmp_path: Path) -> None:
    out = await run_loadgen(tmp_path, drop_every=7)
    assert out["code"] == 0, out["stderr"]
    result = out["events"][-1]
    assert result["missing"] > 0
    assert result["all_delivered"] is False


@needs_loadgen
async def test_refuses_a_target_off_loopback(tmp_path: Path) -> None:
    out = await run_loadgen(tmp_path, drop_every=0, urls="ws://bench-target.invalid/ws")
    assert out["code"] == 2
    assert "non-loopback" in out["stderr"]


def test_docs_table_is_replaced_between_the_markers(tmp_path: Path) -> None:
    doc = tmp_path / "performance.md"
    doc.write_text("# Title\n\nprose before\n")
    report.write_docs(doc, "first\n")
    text = doc.read_text()
    assert text.startswith("# Title\n\nprose before\n")
    assert f"{report.BEGIN}\nfirst\n{report.END}" in text
    doc.write_text(text + "\nprose after\n")
    report.write_docs(doc, "second\n")
    text = doc.read_text()
    assert "first" not in text
    assert f"{report.BEGIN}\nsecond\n{report.END}\n\nprose after\n" in text
    assert text.count(report.BEGIN) == 1


def test_tables_show_ratios_and_flag_missing_deliveries() -> None:
    def run(target: str, cpu: float, missing: int = 0) -> dict[str, Any]:
        return {
            "target": target,
            "row": "10@100",
            "pass": 1,
            "cpu_s_per_1000": cpu,
            "p99_ms": 5.0,
            "p50_ms": 1.0,
            "ack_p50_ms": 1.0,
            "missing": missing,
            "duplicates": 0,
            "all_delivered": missing == 0,
            "errors": {"busy": 1} if missing else {},
            "cpu_s_per_1000_by_role": {"nodes": cpu},
            "redis_commands_per_message": None,
            "deliveries_per_s": 1000.0,
            "received": 1000 - missing,
            "expected": 1000,
            "server_cores": 0.5,
            "client_cpu_s": 0.1,
            "loadavg_before": [1.0, 1.0, 1.0],
            "loadavg_after": [1.0, 1.0, 1.0],
        }

    records = [run("chat-cluster", 0.3, missing=4), run("centrifugo-redis", 0.1)]
    text = report.tables(
        records, [Row("10@100", 200, 10, 100)], ["chat-cluster", "centrifugo-redis"]
    )
    assert "| 0.300 / 5.0 (**4 deliveries missing; 1 sends refused: `busy`**) |" in text
    assert f"| cluster ÷ Centrifugo (Redis, fsync) | 3.0{report.TIMES} |" in text
