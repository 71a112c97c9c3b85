"""Embedded-mode fan-out benchmark (issue 2).

One server process (``python -m chat dev``, SQLite + in-process bus) on a free loopback port
with a throw-away data directory; 200 users in 20 groups of 10, one WebSocket each. An
open-loop publisher sends at a fixed total rate (the schedule does not wait for acks), round
robin over the users, each into its own group; every member (sender included) receives each
message, so deliveries = 10 x sends.

Measured, over a window that starts after a warm-up:

* deliveries per second: deliveries of messages sent in the window, divided by the time from
  the window's start to the last such delivery;
* send->receive latency per delivery: the sender's ``time.monotonic_ns()`` is embedded in the
  body, the receiver subtracts it on arrival (client and receivers share one process, so one
  clock); includes client-side scheduling, which is why client CPU is reported too;
* send->ack latency per send (the server's append, fsync included, plus the round trip);
* server CPU seconds (utime + stime from /proc/PID/stat) over the same interval, per 1000
  deliveries; server RSS at the end; client CPU (getrusage) over the same interval.

``--target peer`` runs the same load against ``bench/peer_tornado_fanout.py`` (no storage) for
a floor on the same machine. Everything is bounded: counts are rate x duration, waits have
timeouts, and nothing here asserts on time.

    .venv/bin/python bench/embedded_fanout.py --rate 300 --duration 20 --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from websockets.asyncio.client import ClientConnection, connect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout, for tools/

from tools.harness.net import free_port

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


# -- server process ---------------------------------------------------------------------------
def proc_cpu_s(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MiB."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def self_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def spawn(cmd: list[str], env: dict[str, str], log: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log)


async def start_server(
    target: str, port: int, data_dir: Path, log_path: Path
) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    if target == "chat":
        env.update(
            CHAT_LIMIT_SEND_RATE_PER_S="100000",
            CHAT_LIMIT_SEND_BURST="100000",
            CHAT_LIMIT_MAX_CONNECTIONS_PER_USER="10",
            CHAT_LIMIT_REGISTER_BURST_PER_IP="100000",  # every bench user signs up from here
        )
        cmd = [sys.executable, "-m", "chat", "dev", "--data-dir", str(data_dir)]
        cmd += ["--port", str(port)]
        banner = b"running at"
    else:
        cmd = [sys.executable, str(ROOT / "bench" / "peer_tornado_fanout.py"), "--port", str(port)]
        banner = b"peer running at"
    log = log_path.open("wb")
    proc = spawn(cmd, env, log)
    assert proc.stdout is not None
    stdout = proc.stdout
    loop = asyncio.get_running_loop()

    def wait_banner() -> bool:
        for line in stdout:
            log.write(line)
            log.flush()
            if banner in line:
                return True
        return False

    ok = await asyncio.wait_for(loop.run_in_executor(None, wait_banner), 60)
    if not ok:
        raise RuntimeError(f"server exited before its banner; see {log_path}")
    # Keep draining stdout so the server never blocks on a full pipe.
    loop.run_in_executor(None, lambda: [log.write(line) for line in stdout])
    return proc


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


# -- setup over HTTP --------------------------------------------------------------------------
@dataclass
class User:
    index: int
    id: str
    token: str
    conversation: str = ""


async def post(base: str, path: str, body: dict[str, Any], token: str = "") -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = HTTPRequest(
        base + path, method="POST", body=orjson.dumps(body), headers=headers, request_timeout=60
    )
    resp = await AsyncHTTPClient().fetch(req)
    result: dict[str, Any] = orjson.loads(resp.body)
    return result


async def register_user(
    base: str, index: int, username: str, password: str, sem: asyncio.Semaphore
) -> User:
    """One account (argon2 makes registration slow: callers bound the concurrency)."""
    async with sem:
        out = await post(
            base, "/api/v1/auth/register", {"username": username, "password": password}
        )
    return User(index, out["user"]["id"], out["access_token"])


async def setup_chat(base: str, users: int, group: int, concurrency: int) -> list[User]:
    sem = asyncio.Semaphore(concurrency)
    run = os.urandom(3).hex()
    people = await asyncio.gather(
        *(
            register_user(base, i, f"b{run}u{i}", f"bench-password-{run}-{i}", sem)
            for i in range(users)
        )
    )
    for g in range(0, users, group):
        members = people[g : g + group]
        out = await post(
            base,
            "/api/v1/conversations",
            {
                "kind": "group",
                "title": f"bench {g // group}",
                "member_ids": [u.id for u in members],
            },
            members[0].token,
        )
        for u in members:
            u.conversation = out["id"]
    return people


def setup_peer(users: int, group: int) -> list[User]:
    return [User(i, f"u{i}", f"u{i}", f"room{i // group}") for i in range(users)]


# -- load -------------------------------------------------------------------------------------
@dataclass
class Stats:
    window_start_ns: int = 0
    window_end_ns: int = 0  # publisher's last scheduled send in the window
    measured_sent: int = 0
    warm_sent: int = 0
    measured_delivered: int = 0
    other_delivered: int = 0
    last_delivery_ns: int = 0
    acks: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latencies_us: list[int] = field(default_factory=list)
    ack_latencies_us: list[int] = field(default_factory=list)
    expected: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)


async def reader(ws: ClientConnection, stats: Stats, pending_acks: dict[str, int]) -> None:
    lat = stats.latencies_us
    with contextlib.suppress(Exception):
        async for raw in ws:
            now = time.monotonic_ns()
            frame = orjson.loads(raw)
            kind = frame["type"]
            if kind == "message":
                phase, _, sent = frame["body"].partition(" ")
                if phase == "m":
                    lat.append((now - int(sent.split(" ", 1)[0])) // 1000)
                    stats.measured_delivered += 1
                    stats.last_delivery_ns = now
                    if stats.measured_delivered >= stats.expected > 0:
                        stats.done.set()
                else:
                    stats.other_delivered += 1
            elif kind == "ack":
                stats.acks += 1
                sent_ns = pending_acks.pop(frame["ref"], 0)
                if sent_ns:
                    stats.ack_latencies_us.append((now - sent_ns) // 1000)
            elif kind == "error":
                code = str(frame.get("code"))
                stats.errors[code] = stats.errors.get(code, 0) + 1


async def open_socket(
    target: str, url: str, origin: str, user: User, stats: Stats, acks: dict[str, int]
) -> tuple[ClientConnection, asyncio.Task[None]]:
    ws = await connect(
        url,
        additional_headers={"Origin": origin},
        compression=None,
        max_size=1 << 20,
        ping_interval=None,
        open_timeout=30,
    )
    auth: dict[str, Any] = {"type": "auth", "ref": "a", "token": user.token}
    if target == "peer":
        auth["conversations"] = [user.conversation]
    await ws.send(orjson.dumps(auth).decode())
    for _ in range(1000):  # presence notices may come first; bounded
        ready = orjson.loads(await asyncio.wait_for(ws.recv(), 30))
        if ready.get("type") == "ready":
            break
        if ready.get("type") == "error":
            raise RuntimeError(f"auth failed for user {user.index}: {ready}")
    return ws, asyncio.create_task(reader(ws, stats, acks))


async def publish(
    sockets: list[ClientConnection],
    users: list[User],
    rate: float,
    count: int,
    phase: str,
    stats: Stats,
    acks: dict[str, int],
    pad: str,
    offset: int,
) -> None:
    """Open loop: message i is due at start + i/rate; late ones go out at once, never skipped."""
    start = time.monotonic()
    n = len(sockets)
    for i in range(count):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        k = (offset + i) % n
        user = users[k]
        ref = f"{phase}{offset + i}"
        t = time.monotonic_ns()
        frame = {
            "type": "send",
            "ref": ref,
            "conversation_id": user.conversation,
            "client_id": ref,
            "body": f"{phase} {t} {pad}",
        }
        acks[ref] = t
        with contextlib.suppress(Exception):
            await sockets[k].send(orjson.dumps(frame).decode())
        if phase == "m":
            stats.measured_sent += 1
        else:
            stats.warm_sent += 1


def pct(values: list[int], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000  # us -> ms


async def run(args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="chatbench-") as tmp:
        tmpdir = Path(tmp)
        proc = await start_server(args.target, port, tmpdir / "data", tmpdir / "server.log")
        try:
            return await drive(args, proc, base, port)
        except BaseException:
            sys.stderr.write((tmpdir / "server.log").read_text(errors="replace")[-4000:])
            raise
        finally:
            stop_server(proc)


async def drive(
    args: argparse.Namespace, proc: subprocess.Popen[bytes], base: str, port: int
) -> dict[str, Any]:
    t_setup = time.monotonic()
    if args.target == "chat":
        users = await setup_chat(base, args.users, args.group, args.register_concurrency)
    else:
        users = setup_peer(args.users, args.group)
    setup_s = time.monotonic() - t_setup

    stats = Stats()
    acks: dict[str, int] = {}
    url, origin = f"ws://127.0.0.1:{port}/ws", base
    sem = asyncio.Semaphore(20)

    async def opened(u: User) -> tuple[ClientConnection, asyncio.Task[None]]:
        async with sem:
            return await open_socket(args.target, url, origin, u, stats, acks)

    pairs = await asyncio.gather(*(opened(u) for u in users))
    sockets = [ws for ws, _ in pairs]
    readers = [task for _, task in pairs]

    pad = "x" * max(0, args.body_bytes - 30)
    warm_count = int(args.rate * args.warmup)
    count = int(args.rate * args.duration)
    group = args.group
    await publish(sockets, users, args.rate, warm_count, "w", stats, acks, pad, 0)
    await asyncio.sleep(0.5)  # let the warm-up's tail drain before the window opens

    stats.expected = count * group
    acks.clear()
    stats.ack_latencies_us.clear()
    cpu0, mine0 = proc_cpu_s(proc.pid), self_cpu_s()
    stats.window_start_ns = time.monotonic_ns()
    await publish(sockets, users, args.rate, count, "m", stats, acks, pad, warm_count)
    stats.window_end_ns = time.monotonic_ns()
    drained = True
    try:
        await asyncio.wait_for(stats.done.wait(), args.drain_timeout)
    except TimeoutError:
        drained = False
    t_end = time.monotonic_ns()
    cpu1, mine1 = proc_cpu_s(proc.pid), self_cpu_s()
    rss, hwm = proc_rss_mb(proc.pid)

    for ws in sockets:
        with contextlib.suppress(Exception):
            await ws.close()
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)

    last = stats.last_delivery_ns if drained else t_end
    elapsed = max(1e-9, (last - stats.window_start_ns) / 1e9)
    delivered = stats.measured_delivered
    server_cpu = cpu1 - cpu0
    return {
        "target": args.target,
        "rate_msgs_per_s": args.rate,
        "duration_s": args.duration,
        "users": args.users,
        "group_size": group,
        "sockets": len(sockets),
        "sent": stats.measured_sent,
        "expected_deliveries": stats.expected,
        "deliveries": delivered,
        "all_delivered": drained,
        "send_window_s": round((stats.window_end_ns - stats.window_start_ns) / 1e9, 3),
        "elapsed_s": round(elapsed, 3),
        "deliveries_per_s": round(delivered / elapsed, 1),
        "latency_p50_ms": round(pct(stats.latencies_us, 0.50), 2),
        "latency_p99_ms": round(pct(stats.latencies_us, 0.99), 2),
        "latency_max_ms": round(pct(stats.latencies_us, 1.0), 2),
        "ack_p50_ms": round(pct(stats.ack_latencies_us, 0.50), 2),
        "ack_p99_ms": round(pct(stats.ack_latencies_us, 0.99), 2),
        "server_cpu_s": round(server_cpu, 2),
        "server_cpu_s_per_1000_deliveries": round(1000 * server_cpu / max(1, delivered), 4),
        "server_cpu_util": round(server_cpu / elapsed, 3),
        "server_rss_mb": round(rss, 1),
        "server_peak_rss_mb": round(hwm, 1),
        "client_cpu_s": round(mine1 - mine0, 2),
        "client_cpu_util": round((mine1 - mine0) / elapsed, 3),
        "errors": stats.errors,
        "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
        "setup_s": round(setup_s, 1),
    }


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "date": time.strftime("%Y-%m-%d"),
    }


COLUMNS = (
    ("target", "target", "{}"),
    ("rate", "rate_msgs_per_s", "{:g}"),
    ("deliv/s", "deliveries_per_s", "{:.0f}"),
    ("p50 ms", "latency_p50_ms", "{:.2f}"),
    ("p99 ms", "latency_p99_ms", "{:.2f}"),
    ("ack p50", "ack_p50_ms", "{:.2f}"),
    ("ack p99", "ack_p99_ms", "{:.2f}"),
    ("srv cpu-s/1k", "server_cpu_s_per_1000_deliveries", "{:.4f}"),
    ("srv cpu", "server_cpu_util", "{:.0%}"),
    ("cli cpu", "client_cpu_util", "{:.0%}"),
    ("rss MB", "server_rss_mb", "{:.0f}"),
    ("all", "all_delivered", "{}"),
)


def table(rows: list[dict[str, Any]]) -> str:
    head = [c[0] for c in COLUMNS]
    body = [[fmt.format(r[key]) for _, key, fmt in COLUMNS] for r in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
    lines = [" | ".join(h.rjust(w) for h, w in zip(head, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in body]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description="Embedded-mode fan-out benchmark (issue 2).")
    p.add_argument("--target", choices=("chat", "peer", "both"), default="chat")
    p.add_argument("--rate", type=float, nargs="+", default=[200.0], help="total sends/s")
    p.add_argument("--duration", type=float, default=20.0, help="measured window, seconds")
    p.add_argument("--warmup", type=float, default=2.0, help="warm-up sending, seconds")
    p.add_argument("--users", type=int, default=200)
    p.add_argument("--group", type=int, default=10, help="members per group")
    p.add_argument("--body-bytes", type=int, default=64)
    p.add_argument("--drain-timeout", type=float, default=30.0)
    p.add_argument("--register-concurrency", type=int, default=4)
    p.add_argument("--json", type=Path, help="write results here")
    args = p.parse_args()
    if args.users % args.group or args.rate[0] <= 0 or args.duration <= 0:
        p.error("--users must be a multiple of --group; --rate and --duration positive")
    if args.rate[0] * args.duration > 1_000_000:
        p.error("more than 1,000,000 sends: lower --rate or --duration")

    targets = ["chat", "peer"] if args.target == "both" else [args.target]
    rows = []
    for rate in args.rate:
        for target in targets:
            one = argparse.Namespace(**{**vars(args), "rate": rate, "target": target})
            row = asyncio.run(run(one))
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    info = machine()
    print(
        f"machine: nproc={info['nproc']} cpu={info['cpu']!r} python={info['python']} "
        f"kernel={info['kernel']} date={info['date']}"
    )
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "results": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
