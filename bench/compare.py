"""The project's benchmark against its peers (issue 14): one command, every target, every row.

    .venv/bin/python -m bench.compare            # full run; rewrites docs/performance.md's table
    .venv/bin/python -m bench.compare --quick    # smoke: short windows, one pass, docs untouched
    .venv/bin/python -m bench.compare --profile  # also py-spy on the chat Python processes

Setup is idempotent and cached in $CHATCLUSTER_CACHE/bench/: the load generator (built from
bench/loadgen, keyed by a hash of its sources), Centrifugo v6.9.1 (built once from its Go
module: minutes on 2 cores) and the bench venv (python-socketio, py-spy; bench/requirements.txt).

Every target is started once on loopback and kept up; then, pass after pass, each row runs on
each target in turn (A B C D E, A B C D E), so that a change in the machine's load hits every
target alike. Per run: the load generator opens the sockets, warms up, and the driver reads
the CPU of every server process (/proc, whole process trees), Redis INFO commandstats and
/proc/loadavg at the window's edges. Nothing asserts on time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import report
from bench.driver import Row, Settings, run_row
from bench.targets import ALL, ROOT, Target, make

CACHE = Path(os.environ.get("CHATCLUSTER_CACHE", "/var/cache/chatcluster"))
SETUP = ROOT / "bench" / "setup"

ROWS = (
    Row("100@50", 200, 100, 50),
    Row("100@100", 200, 100, 100),
    Row("10@100", 200, 10, 100),
    Row("10@300", 200, 10, 300),
    Row("1000@10", 1000, 1000, 10),
    Row("idle", 10_000, 500, 0),  # 20 rooms; chat: 200 users x 50 sockets, groups of 10
)


def _setup_step(script: str, env: dict[str, str] | None = None) -> Path:
    """Runs one bench/setup script; its last line of output is the path it made."""
    out = subprocess.run(
        ["bash", str(SETUP / script)],
        check=True,
        stdout=subprocess.PIPE,
        env={**os.environ, **(env or {})},
        text=True,
    ).stdout
    return Path(out.strip().splitlines()[-1])


def setup() -> tuple[Path, Path, Path]:
    """(load generator, centrifugo binary, bench venv), building what is missing."""
    t = time.monotonic()
    loadgen = _setup_step("loadgen.sh")
    subprocess.run(["bash", str(SETUP / "centrifugo.sh")], check=True, stdout=sys.stderr)
    centrifugo = CACHE / "bench" / "centrifugo-v6.9.1" / "centrifugo"
    base = getattr(sys, "_base_executable", sys.executable)
    venv = _setup_step("venv.sh", {"BENCH_PYTHON": base})
    print(f"setup: {time.monotonic() - t:.1f}s", file=sys.stderr)
    return loadgen, centrifugo, venv


def raise_nofile() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit, never above it (the servers inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


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
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="2 s windows, 1 pass, 1 000 idle sockets")
    p.add_argument("--targets", default=",".join(ALL), help=f"comma-separated of {ALL}")
    p.add_argument("--rows", default=",".join(r.key for r in ROWS), help="comma-separated keys")
    p.add_argument("--passes", type=int, default=2)
    p.add_argument("--window", type=float, default=15.0, help="measured seconds per run")
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--drain", type=float, default=30.0, help="seconds to wait for stragglers")
    p.add_argument("--idle-sockets", type=int, default=10_000)
    p.add_argument("--profile", action="store_true", help="py-spy on chat's Python processes")
    p.add_argument("--out", type=Path, help="directory for results, plans, logs, profiles")
    p.add_argument("--docs", type=Path, help="markdown file whose marked table is rewritten")
    p.add_argument("--no-docs", action="store_true")
    p.add_argument(
        "--from-results",
        type=Path,
        nargs="+",
        help="only render earlier runs' results.json; a later file's run of the same target, "
        "row and pass replaces an earlier one's (to redo one cell)",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.passes, args.window, args.warmup, args.drain = 1, 2.0, 1.0, 15.0
        args.idle_sockets = min(args.idle_sockets, 1000)
        args.no_docs = args.no_docs or args.docs is None
    if not 1 <= args.passes <= 10 or not 0 < args.window <= 120:
        p.error("--passes 1..10, --window 0..120 s")
    if not 200 <= args.idle_sockets <= 10_000 or args.idle_sockets % 200:
        p.error("--idle-sockets: a multiple of 200 from 200 to 10 000")
    return args


def _rows(args: argparse.Namespace) -> list[Row]:
    keys = args.rows.split(",")
    return [
        Row(r.key, args.idle_sockets, args.idle_sockets // 20, 0) if r.idle else r
        for r in ROWS
        if r.key in keys
    ]


def render(info: dict[str, Any], records: list[dict[str, Any]], args: argparse.Namespace) -> str:
    present = {r["target"] for r in records}
    names = [n for n in args.targets.split(",") if n in present]
    body = (
        f"Measured {info['date']} on {info['nproc']} {report.TIMES} {info['cpu']}, "
        f"Python {info['python']}, kernel {info['kernel']}; {info['passes']} pass(es), "
        f"{info['window_s']:g} s windows, whole run {info['total_s']:.0f} s.\n\n"
    )
    return body + report.tables(records, _rows(args), names)


def measure(args: argparse.Namespace) -> tuple[dict[str, Any], list[dict[str, Any]], Path]:
    names = [n for n in args.targets.split(",") if n]
    unknown = set(names) - set(ALL)
    if unknown:
        raise SystemExit(f"unknown targets {sorted(unknown)}; known: {ALL}")
    rows = _rows(args)
    t_start = time.monotonic()
    loadgen, centrifugo, venv = setup()
    nofile = raise_nofile()
    if any(r.sockets + 64 > nofile for r in rows):
        raise SystemExit(f"RLIMIT_NOFILE hard limit {nofile} is too low for the idle row")
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    out = args.out or Path(tempfile.gettempdir()) / f"bench-compare-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    out.chmod(0o755)  # the postgres user must reach its data directory below
    settings = Settings(
        loadgen=loadgen,
        warmup_s=args.warmup,
        window_s=args.window,
        drain_s=args.drain,
        body_bytes=64,
        out=out,
        profile=args.profile,
        py_spy=venv / "bin" / "py-spy",
    )
    records: list[dict[str, Any]] = []
    started: list[Target] = []
    info = machine()
    try:
        t = time.monotonic()
        for name in names:
            target = make(name, out, centrifugo, venv)
            started.append(target)
            target.start()
            print(f"started {name} ({time.monotonic() - t:.0f}s)", file=sys.stderr, flush=True)
        info["targets_start_s"] = round(time.monotonic() - t, 1)
        # Memory first and once: RSS only says what N sockets cost in processes that have
        # never held more (freed memory is reused, not returned).
        plan = [(1, r) for r in rows if r.idle]
        plan += [(n, r) for n in range(1, args.passes + 1) for r in rows if not r.idle]
        for n, row in plan:
            for target in started:
                tag = f"p{n}-{row.key.replace('@', 'at')}"
                try:
                    rec = run_row(target, row, settings, tag)
                except Exception as e:  # a failed run is a result too: recorded, not fatal
                    rec = {"target": target.name, "row": row.key, "tag": tag, "error": str(e)}
                rec["pass"] = n
                records.append(rec)
                print(json.dumps(rec), file=sys.stderr, flush=True)
    finally:
        for target in reversed(started):
            with contextlib.suppress(Exception):
                target.stop()
    info.update(total_s=round(time.monotonic() - t_start, 1), passes=args.passes)
    info["window_s"] = args.window
    results = {"machine": info, "args": {k: str(v) for k, v in vars(args).items()}}
    (out / "results.json").write_text(json.dumps({**results, "results": records}, indent=2))
    if args.profile:
        profiles = sorted(out.glob("profile-*.txt"))
        (out / "profile-summary.md").write_text(report.profile_summary(profiles))
        print(f"profiles: {out}/profile-summary.md", file=sys.stderr)
    print(f"results: {out}/results.json", file=sys.stderr)
    return info, records, out


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.from_results:
        runs = [json.loads(path.read_text()) for path in args.from_results]
        args.idle_sockets = int(runs[0]["args"]["idle_sockets"])
        info = runs[0]["machine"]
        merged: dict[tuple[str, str, int], dict[str, Any]] = {}
        for saved in runs:
            for rec in saved["results"]:
                merged[(rec["target"], rec["row"], rec["pass"])] = rec
        records = list(merged.values())
        if len(runs) > 1:
            info = {**info, "total_s": sum(r["machine"]["total_s"] for r in runs)}
    else:
        info, records, _ = measure(args)
    body = render(info, records, args)
    print(body)
    if not args.no_docs:
        report.write_docs(args.docs or ROOT / "docs" / "performance.md", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
