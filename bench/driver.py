"""Runs the compiled load generator (bench/loadgen) on one target for one row, and reads the
target's processes at the window's edges: CPU by role, Redis commands, load average, and for
the idle row the RSS of the processes that hold the sockets."""

from __future__ import annotations

import json
import math
import queue
import secrets
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from bench import procstats
from bench.targets import Target

# Every wait on the load generator is bounded.
OPEN_TIMEOUT_S = 300.0
IDLE_HOLD_S = 30.0
"""How long the idle row holds its sockets open while counting what they cost: longer than
every target's keep-alive period (chat's 20 s heartbeat, Centrifugo's and python-socketio's
25 s pings), so each periodic per-socket cost falls in it at least once."""


@dataclass(frozen=True)
class Row:
    key: str
    sockets: int
    room: int
    rate: float  # messages per second, all senders together; 0 for the idle row

    @property
    def idle(self) -> bool:
        return self.rate == 0

    @property
    def title(self) -> str:
        if self.idle:
            return f"{self.sockets:,} idle sockets".replace(",", " ")
        return f"{self.room} @ {self.rate:g}"


@dataclass
class Settings:
    loadgen: Path
    warmup_s: float
    window_s: float
    drain_s: float
    body_bytes: int
    out: Path
    profile: bool
    py_spy: Path


class Loadgen:
    """One load-generator process and its line protocol (see bench/loadgen/main.go)."""

    def __init__(self, binary: Path, plan: Path, log: Path) -> None:
        self.log = log.open("wb")
        self.proc = subprocess.Popen(
            [str(binary), "-plan", str(plan)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
        )
        self.lines: queue.Queue[bytes] = queue.Queue()
        assert self.proc.stdout is not None
        threading.Thread(target=self._pump, args=(self.proc.stdout,), daemon=True).start()

    def _pump(self, stdout: IO[bytes]) -> None:
        for line in stdout:
            self.lines.put(line)
        self.lines.put(b"")

    def expect(self, event: str, timeout_s: float) -> dict[str, Any]:
        try:
            line = self.lines.get(timeout=timeout_s)
        except queue.Empty:
            raise TimeoutError(f"loadgen: no {event!r} after {timeout_s:g}s") from None
        if not line:
            self.proc.wait(10)
            err = Path(self.log.name).read_text(errors="replace")[-2000:]
            raise RuntimeError(f"loadgen exited ({self.proc.returncode}) before {event!r}: {err}")
        msg: dict[str, Any] = json.loads(line)
        if msg.get("event") != event:
            raise RuntimeError(f"loadgen: expected {event!r}, got {msg}")
        return msg

    def say(self, word: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(word.encode() + b"\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.log.close()


def _redis(target: Target) -> Counter[str]:
    return sum((procstats.redis_calls(p) for p in target.redis_ports), start=Counter())


def _mongo(target: Target) -> Counter[str]:
    return sum((procstats.mongo_requests(p) for p in target.mongo_debug_ports), start=Counter())


def _profile(target: Target, settings: Settings, name: str) -> list[subprocess.Popen[bytes]]:
    """py-spy on each Python server process, non-blocking (it does not stop the process to
    sample), for the window; raw collapsed stacks, one file per process."""
    out = []
    for pid in target.python_pids:
        path = settings.out / f"profile-{name}-{pid}.txt"
        cmd = [str(settings.py_spy), "record", "--pid", str(pid), "--nonblocking"]
        cmd += ["--rate", "100", "--format", "raw", "--duration", str(math.ceil(settings.window_s))]
        out.append(
            subprocess.Popen(
                [*cmd, "-o", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        )
    return out


def run_row(target: Target, row: Row, settings: Settings, tag: str) -> dict[str, Any]:
    layout = target.layout(row.sockets, row.room, tag)
    plan = {
        "protocol": layout.protocol,
        "mode": "idle" if row.idle else "fanout",
        "origin": layout.origin,
        "sockets": layout.sockets,
        "rate": row.rate,
        "warmup_s": settings.warmup_s,
        "window_s": settings.window_s,
        "drain_s": settings.drain_s,
        "body_bytes": settings.body_bytes,
        "open_concurrency": 32,
        "nonce": secrets.token_hex(4),
    }
    name = f"{tag}-{target.name}"
    plan_path = settings.out / f"plan-{name}.json"
    plan_path.write_text(json.dumps(plan))
    front = [p.pid for p in target.front]
    rss0 = procstats.rss_kib(front)
    gen = Loadgen(settings.loadgen, plan_path, settings.out / f"loadgen-{name}.log")
    record: dict[str, Any] = {"target": target.name, "row": row.key, "tag": tag}
    try:
        ready = gen.expect("ready", OPEN_TIMEOUT_S)
        if row.idle:
            time.sleep(2)  # let allocations settle before reading RSS (a measurement, not sync)
            rss1 = procstats.rss_kib(front)
            record["loadavg"] = procstats.loadavg()
            redis0 = _redis(target)
            cpu0 = procstats.cpu_by_role(target.roles())
            time.sleep(IDLE_HOLD_S)  # the measurement window itself, not a synchronisation
            cpu1 = procstats.cpu_by_role(target.roles())
            redis1 = _redis(target)
            gen.say("ok")
            result = gen.expect("result", 120)
            per_k = 1000 / row.sockets / IDLE_HOLD_S  # per second, per 1000 idle sockets
            record.update(
                sockets=row.sockets,
                open_s=ready["open_s"],
                rss_before_mib=round(rss0 / 1024, 1),
                rss_after_mib=round(rss1 / 1024, 1),
                kib_per_socket=round((rss1 - rss0) / row.sockets, 2),
                unexpected_closes=result["unexpected_closes"],
                idle_hold_s=IDLE_HOLD_S,
                idle_cpu_ms_per_s_per_1000=round(
                    1000 * per_k * sum(cpu1[r] - cpu0[r] for r in cpu0), 3
                ),
                idle_redis_commands_per_s_per_1000=(
                    round(per_k * (redis1.total() - redis0.total()), 2)
                    if target.redis_ports
                    else None
                ),
            )
            return record
        la0 = procstats.loadavg()
        redis0 = _redis(target)
        mongo0 = _mongo(target)
        cpu0 = procstats.cpu_by_role(target.roles())
        spies = _profile(target, settings, name) if settings.profile else []
        gen.say("go")
        gen.expect("drained", settings.window_s * 4 + settings.drain_s + 60)
        cpu1 = procstats.cpu_by_role(target.roles())
        redis1 = _redis(target)
        mongo1 = _mongo(target)
        la1 = procstats.loadavg()
        gen.say("ok")
        result = gen.expect("result", 120)
        for spy in spies:
            spy.wait(60)
    finally:
        gen.close()
    delivered = max(1, int(result["received"]))
    cpu = {role: cpu1[role] - cpu0[role] for role in cpu0}
    total = sum(cpu.values())
    record.update(result)
    del record["event"]
    record.update(
        cpu_s=round(total, 3),
        cpu_s_per_1000=round(1000 * total / delivered, 4),
        cpu_s_per_1000_by_role={r: round(1000 * v / delivered, 4) for r, v in cpu.items()},
        server_cores=round(total / max(1e-9, result["elapsed_s"]), 2),
        redis_commands_per_message=(
            round((redis1.total() - redis0.total()) / max(1, result["sent"]), 2)
            if target.redis_ports
            else None
        ),
        # The sixteen commands most run, per message sent: where the count above comes from.
        redis_commands_per_message_by_command=(
            {
                name: round(n / max(1, result["sent"]), 2)
                for name, n in (redis1 - redis0).most_common(16)
            }
            if target.redis_ports
            else None
        ),
        mongo_round_trips_per_1000_messages=(
            round(1000 * (mongo1.total() - mongo0.total()) / max(1, result["sent"]), 1)
            if target.mongo_debug_ports
            else None
        ),
        # Per command: where the round trips come from (the archive's inserts, the sweep's).
        mongo_round_trips_per_1000_messages_by_command=(
            {
                name: round(1000 * n / max(1, result["sent"]), 1)
                for name, n in (mongo1 - mongo0).most_common(10)
            }
            if target.mongo_debug_ports
            else None
        ),
        loadavg_before=la0,
        loadavg_after=la1,
    )
    return record
