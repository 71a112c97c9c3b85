"""`chatcluster devcluster`: the whole cluster on one machine, as real processes on loopback.

redis-server (AOF, `appendfsync always`), PostgreSQL 15, FerretDB (the MongoDB protocol), then
`migrate`, N `ws` gateways, one `api`, M `worker` processes, and haproxy in front as the
ingress: one URL, `/ws` spread over the gateways (least connections, tunnel timeouts), anything
else to the API, every backend health-checked on `/readyz`. SIGINT/SIGTERM stop it all, front
first: haproxy, then the gateways drain (1012), then API, workers and the servers.

The pieces are reusable: `AppCluster` runs the chatcluster processes and haproxy against any
Redis/PostgreSQL/MongoDB (the multi-process tests hand it their own servers, and SIGKILL or
restart single processes), `Services` starts the three servers for the command.

Every child runs in its own process group (a terminal's ^C reaches only this process, which
then stops the children in order) and gets SIGKILL from the kernel if this process dies
(PR_SET_PDEATHSIG), so nothing outlives it.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")
FERRETDB_VERSION = "v1.24.2"  # as pinned by scripts/setup.d/30-ferretdb.sh
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def ferretdb_binary() -> Path:
    cache = Path(os.environ.get("CHATCLUSTER_CACHE", "/var/cache/chatcluster"))
    return cache / f"ferretdb-{FERRETDB_VERSION}" / "ferretdb"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def poll(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll `check` (exceptions count as "not yet") until it holds, or raise naming `what`."""
    deadline = time.monotonic() + timeout_s
    delay = 0.02
    while True:
        with contextlib.suppress(Exception):
            if check():
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {timeout_s:g}s")
        time.sleep(delay)
        delay = min(delay * 2, 0.25)


def http_ok(url: str, timeout_s: float = 2.0) -> bool:
    with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 (loopback URL)
        return int(resp.status) == 200


def tcp_open(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def _child_setup() -> None:
    """In the child before exec: die with the parent (set after `user=` took effect, since a
    credential change clears it)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class Proc:
    """One child process that can be started, stopped, SIGKILLed and started again, with the
    same command, port and log file."""

    name: str
    argv: list[str]
    log_path: Path
    env: Mapping[str, str] | None = None
    port: int = 0
    ready: Callable[[Proc], bool] | None = None
    stop_signal: int = signal.SIGTERM
    user: str | None = None
    cwd: Path | None = None
    popen: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool = True) -> None:
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        with self.log_path.open("ab") as log:
            # The argv is built in this module from fixed names and ports, never a shell.
            self.popen = subprocess.Popen(  # noqa: S603
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=None if self.env is None else dict(self.env),
                cwd=self.cwd,
                user=self.user,
                process_group=0,
                preexec_fn=_child_setup,
            )
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Poll the readiness check (an exception counts as "not yet"); a child that exits
        meanwhile fails at once, with its log."""
        deadline = time.monotonic() + timeout_s
        delay = 0.02
        while True:
            if self.popen is None or self.popen.poll() is not None:
                code = None if self.popen is None else self.popen.returncode
                raise ChildFailed(f"{self.name} exited with {code}:\n{self.tail()}")
            with contextlib.suppress(Exception):
                if self.ready is None or self.ready(self):
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} not ready after {timeout_s:g}s:\n{self.tail()}")
            time.sleep(delay)
            delay = min(delay * 2, 0.25)

    @property
    def pid(self) -> int:
        if self.popen is None:
            raise RuntimeError(f"{self.name} was never started")
        return self.popen.pid

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int | None:
        """Ask it to stop (its stop signal), SIGKILL after `timeout_s`; the exit code."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self.popen.send_signal(self.stop_signal)
            try:
                self.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        return self.popen.returncode

    def kill(self) -> None:
        """SIGKILL: no shutdown work at all, like a crashed node."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class ChildFailed(RuntimeError):
    """A child process exited while it was expected to start."""


# --- the three servers -----------------------------------------------------------------------


@dataclass
class Backing:
    """Where the cluster keeps its state."""

    redis_url: str
    postgres_dsn: str
    mongodb_uri: str
    mongodb_database: str = "chat"


def redis_proc(workdir: Path, port: int | None = None) -> Proc:
    port = port or free_port()
    argv = [
        "redis-server",
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(workdir),
        # Guarantee 1 of the design: an acked append is fsynced before the reply.
        "--appendonly", "yes",
        "--appendfsync", "always",
        "--save", "",
        "--daemonize", "no",
    ]  # fmt: skip

    def ready(p: Proc) -> bool:
        # A restarted Redis answers -LOADING while it replays the AOF: not ready yet.
        with socket.create_connection(("127.0.0.1", p.port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")

    return Proc("redis", argv, workdir / "redis.log", port=port, ready=ready, cwd=workdir)


def postgres_proc(workdir: Path, port: int | None = None) -> Proc:
    """PostgreSQL refuses root: as root, initdb and postgres run as the `postgres` user in a
    directory it owns. The data directory is created on first use and kept after."""
    port = port or free_port()
    user = "postgres" if os.geteuid() == 0 else None
    workdir.mkdir(parents=True, exist_ok=True)
    if user is not None:
        shutil.chown(workdir, user, user)
    data = workdir / "data"
    if not (data / "PG_VERSION").exists():
        initdb = [str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"]
        subprocess.run(  # noqa: S603 (fixed argv, no shell)
            [*initdb, "-E", "UTF8", "--no-instructions"],
            check=True,
            capture_output=True,
            cwd=workdir,
            user=user,
        )
    argv = [
        str(PG_BIN / "postgres"),
        "-D", str(data),
        "-p", str(port),
        "-k", str(workdir),
        "-c", "listen_addresses=127.0.0.1",
        "-c", "max_connections=300",
    ]  # fmt: skip

    def ready(p: Proc) -> bool:
        # Accepting TCP is not enough: during start-up it answers "starting up".
        check = [str(PG_BIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(p.port)]
        return subprocess.run(check, check=False).returncode == 0  # noqa: S603 (fixed argv)

    # SIGINT is PostgreSQL's "fast" shutdown: disconnect clients, checkpoint, exit.
    return Proc(
        "postgres",
        argv,
        workdir / "postgres.log",
        port=port,
        ready=ready,
        stop_signal=signal.SIGINT,
        user=user,
        cwd=workdir,
    )


def ferretdb_proc(
    workdir: Path, binary: Path, port: int | None = None, postgresql_url: str = ""
) -> Proc:
    """FerretDB on PostgreSQL when `postgresql_url` is given, else on SQLite files in
    `workdir`. Its backend pool defaults to max(4, CPUs) connections; the URL given here
    raises it with `pool_max_conns` for throughput."""
    port = port or free_port()
    (workdir / "data").mkdir(parents=True, exist_ok=True)
    if postgresql_url:
        backend = ["--handler=postgresql", f"--postgresql-url={postgresql_url}"]
    else:
        backend = ["--handler=sqlite", f"--sqlite-url=file:{workdir}/data/"]
    argv = [
        str(binary),
        f"--listen-addr=127.0.0.1:{port}",
        *backend,
        f"--state-dir={workdir}",
        "--telemetry=disable",
        "--debug-addr=-",  # its default fixed port would collide with another instance
        "--log-level=warn",
    ]
    return Proc(
        "ferretdb", argv, workdir / "ferretdb.log", port=port, ready=lambda p: tcp_open(p.port)
    )


@dataclass
class Services:
    """redis-server, PostgreSQL 15 and FerretDB under one directory."""

    root: Path
    ferretdb: Path
    procs: list[Proc] = field(default_factory=list)

    def missing(self) -> list[str]:
        out = []
        if shutil.which("redis-server") is None:
            out.append("redis-server (apt install redis-server)")
        if not (PG_BIN / "postgres").exists():
            out.append(f"PostgreSQL 15 in {PG_BIN} (apt install postgresql-15)")
        if not self.ferretdb.exists():
            out.append(f"FerretDB at {self.ferretdb} (bash scripts/setup.d/30-ferretdb.sh)")
        if shutil.which("haproxy") is None:
            out.append("haproxy (apt install haproxy)")
        return out

    def start(self) -> Backing:
        for sub in ("redis", "ferretdb"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)  # the postgres user must reach its directory
        redis = redis_proc(self.root / "redis")
        pg = postgres_proc(self.root / "postgres")
        for proc in (redis, pg):
            proc.start(wait=False)
            self.procs.append(proc)
        for proc in self.procs:
            proc.wait_ready()
        pg_url = f"postgres://postgres@127.0.0.1:{pg.port}/postgres?pool_max_conns=64"
        ferret = ferretdb_proc(self.root / "ferretdb", self.ferretdb, postgresql_url=pg_url)
        self.procs.append(ferret)
        ferret.start()
        return Backing(
            redis_url=f"redis://127.0.0.1:{redis.port}/0",
            postgres_dsn=f"postgresql://postgres@127.0.0.1:{pg.port}/postgres",
            mongodb_uri=f"mongodb://127.0.0.1:{ferret.port}/",
        )

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()


# --- chatcluster processes and the ingress ---------------------------------------------------


def haproxy_config(
    port: int,
    gateways: Sequence[Proc],
    apis: Sequence[Proc],
    stats_socket: Path,
    maxconn: int,
    check_interval_ms: int = 1000,
) -> str:
    """An ingress in front of the processes: `/ws` → gateways (least connections: sockets are
    long-lived), everything else → API; a backend whose `/readyz` fails (a draining gateway
    answers 503) gets no new connections. `X-Chat-Backend` names the server that answered."""

    def servers(procs: Sequence[Proc]) -> str:
        return "\n".join(f"    server {p.name} 127.0.0.1:{p.port} check" for p in procs)

    return f"""\
global
    maxconn {maxconn}
    stats socket {stats_socket} mode 600 level admin
    hard-stop-after 30s

defaults
    mode http
    option redispatch
    retries 3
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout http-request 10s
    timeout tunnel 1h
    timeout client-fin 5s
    default-server inter {check_interval_ms}ms fastinter 250ms downinter 500ms rise 1 fall 2

frontend chat
    bind 127.0.0.1:{port}
    maxconn {maxconn}
    use_backend gateways if {{ path /ws }}
    default_backend api
    http-response set-header X-Chat-Backend %s

backend gateways
    balance leastconn
    option httpchk
    http-check send meth GET uri /readyz
    http-check expect status 200
{servers(gateways)}

backend api
    balance roundrobin
    option httpchk
    http-check send meth GET uri /readyz
    http-check expect status 200
{servers(apis)}
"""


def haproxy_states(stats_socket: Path) -> dict[str, str]:
    """`server name` → status (UP, DOWN, ...) from haproxy's runtime API."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(2)
        s.connect(str(stats_socket))
        s.sendall(b"show stat\n")
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    lines = b"".join(chunks).decode().splitlines()
    header = lines[0].lstrip("# ").split(",")
    name, svname, status = header.index("pxname"), header.index("svname"), header.index("status")
    states = {}
    for line in lines[1:]:
        cols = line.split(",")
        if len(cols) > status and cols[svname] not in ("FRONTEND", "BACKEND"):
            states[f"{cols[name]}/{cols[svname]}"] = cols[status]
    return states


@dataclass
class AppCluster:
    """`migrate`, then N gateways, one API, M workers and haproxy, on the given state."""

    backing: Backing
    workdir: Path
    gateways: int = 2
    workers: int = 2
    port: int = 0
    jwt_secret: str = ""
    env: Mapping[str, str] = field(default_factory=dict)
    """Extra environment for the chatcluster processes (CHAT_LIMIT_*, ...)."""
    worker_threads: int = 2
    python: str = sys.executable
    ws: list[Proc] = field(default_factory=list)
    api: list[Proc] = field(default_factory=list)
    worker: list[Proc] = field(default_factory=list)
    haproxy: Proc | None = None

    def __post_init__(self) -> None:
        self.port = self.port or free_port()
        self.jwt_secret = self.jwt_secret or secrets.token_urlsafe(48)
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def stats_socket(self) -> Path:
        return self.workdir / "haproxy.sock"

    def process_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            CHAT_BACKEND="cluster",
            CHAT_HOST="127.0.0.1",
            REDIS_URL=self.backing.redis_url,
            POSTGRES_DSN=self.backing.postgres_dsn,
            MONGODB_URI=self.backing.mongodb_uri,
            MONGODB_DATABASE=self.backing.mongodb_database,
            CHAT_JWT_SECRET=self.jwt_secret,
            # Browsers and clients come through the ingress: that is the only Origin.
            CHAT_PUBLIC_URL=self.url,
            PYTHONUNBUFFERED="1",
        )
        env.update(self.env)
        return env

    def _chat(self, name: str, args: list[str], port: int = 0) -> Proc:
        ready: Callable[[Proc], bool] | None = None
        if port:

            def ready(p: Proc) -> bool:
                return http_ok(f"http://127.0.0.1:{p.port}/readyz")

        log = self.workdir / "logs" / f"{name}.log"
        argv = [self.python, "-m", "chat", *args]
        return Proc(name, argv, log, env=self.process_env(), port=port, ready=ready)

    def migrate(self) -> None:
        env = self.process_env()
        out = subprocess.run(  # noqa: S603 (fixed argv, no shell)
            [self.python, "-m", "chat", "migrate"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if out.returncode != 0:
            raise ChildFailed(f"migrate failed ({out.returncode}):\n{out.stdout}{out.stderr}")

    def start(self) -> None:
        self.migrate()
        # Every process has its own internal metrics listener (CHAT_METRICS_PORT's default
        # would collide on one machine).
        for i in range(self.gateways):
            port = free_port()
            args = ["ws", "--port", str(port), "--metrics-port", str(free_port())]
            self.ws.append(self._chat(f"ws{i}", args, port))
        port = free_port()
        args = ["api", "--port", str(port), "--metrics-port", str(free_port())]
        self.api.append(self._chat("api0", args, port))
        for i in range(self.workers):
            args = ["worker", "--processes", "1", "--threads", str(self.worker_threads)]
            self.worker.append(
                self._chat(f"worker{i}", [*args, "--metrics-port", str(free_port())])
            )
        for w in self.worker:
            w.ready = _logged(b"worker ready")
        procs = [*self.ws, *self.api, *self.worker]
        for p in procs:
            p.start(wait=False)
        for p in procs:
            p.wait_ready()
        self.start_haproxy()

    def start_haproxy(self) -> None:
        cfg = self.workdir / "haproxy.cfg"
        nofile = _raise_nofile()
        maxconn = max(256, min(20_000, (nofile - 200) // 2))
        cfg.write_text(haproxy_config(self.port, self.ws, self.api, self.stats_socket, maxconn))
        haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
        check = subprocess.run(  # noqa: S603 (fixed argv, no shell)
            [haproxy, "-c", "-q", "-f", str(cfg)], capture_output=True, text=True, check=False
        )
        if check.returncode != 0:
            raise ChildFailed(f"haproxy rejected {cfg}:\n{check.stdout}{check.stderr}")
        # SIGUSR1 is haproxy's soft stop: stop listening, let open connections finish.
        self.haproxy = Proc(
            "haproxy",
            [haproxy, "-db", "-f", str(cfg)],
            self.workdir / "logs" / "haproxy.log",
            port=self.port,
            stop_signal=signal.SIGUSR1,
            ready=lambda _: self.all_up(),
        )
        self.haproxy.start()

    def all_up(self, expected: Sequence[Proc] | None = None) -> bool:
        """haproxy's health checks see every (or every `expected`) backend as UP."""
        states = haproxy_states(self.stats_socket)
        wanted = expected if expected is not None else [*self.ws, *self.api]
        return all(states.get(self.backend_key(p)) == "UP" for p in wanted)

    def backend_key(self, proc: Proc) -> str:
        return f"{'gateways' if proc in self.ws else 'api'}/{proc.name}"

    def wait_backend(self, proc: Proc, state: str, timeout_s: float = 30.0) -> None:
        """Until haproxy's health checks report `proc` as `state` ("UP", "DOWN")."""
        key = self.backend_key(proc)
        poll(
            lambda: haproxy_states(self.stats_socket).get(key, "").startswith(state),
            timeout_s,
            f"haproxy seeing {key} {state}",
        )

    def processes(self) -> list[Proc]:
        return [p for p in (self.haproxy, *self.ws, *self.api, *self.worker) if p is not None]

    def stop(self) -> dict[str, int | None]:
        """Front first: haproxy, gateways (drain: close 1012), API, workers. Exit codes."""
        codes: dict[str, int | None] = {}
        if self.haproxy is not None:
            codes["haproxy"] = self.haproxy.stop(10)
        for group in (self.ws, self.api, self.worker):
            for p in group:
                if p.running:
                    p.popen.send_signal(p.stop_signal)  # type: ignore[union-attr]
            for p in group:
                codes[p.name] = p.stop()
        return codes


def _logged(marker: bytes) -> Callable[[Proc], bool]:
    def ready(p: Proc) -> bool:
        return marker in p.log_path.read_bytes()[-200_000:]

    return ready


def _raise_nofile() -> int:
    """Raise the soft open-files limit to the hard one (children inherit it); the new soft."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    return int(soft)


# --- the command -----------------------------------------------------------------------------


def build_parser(prog: str = "chatcluster devcluster") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="A whole cluster on this machine: redis-server, PostgreSQL 15, FerretDB, "
        "migrations, N WebSocket gateways, one API, M workers and haproxy in front, all on "
        "loopback. Open the printed URL. Ctrl-C stops everything.",
    )
    p.add_argument("--port", type=int, default=8000, help="haproxy's port (default 8000)")
    p.add_argument("--gateways", type=int, default=2, help="`ws` processes (default 2)")
    p.add_argument("--workers", type=int, default=2, help="`worker` processes (default 2)")
    p.add_argument(
        "--data-dir",
        type=Path,
        help="keep Redis/PostgreSQL/FerretDB data and logs here across runs "
        "(default: a temporary directory, deleted on exit)",
    )
    p.add_argument(
        "--ferretdb",
        type=Path,
        default=None,
        help=f"FerretDB binary (default {ferretdb_binary()})",
    )
    return p


def run(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if not 1 <= args.gateways <= 16 or not 1 <= args.workers <= 16:
        print("devcluster: --gateways and --workers must be 1..16", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with contextlib.ExitStack() as stack:
        if args.data_dir is None:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="devcluster-")))
            root.chmod(0o755)  # the postgres user must reach its data directory
        else:
            root = args.data_dir.resolve()
            root.mkdir(parents=True, exist_ok=True)
        services = Services(root / "servers", args.ferretdb or ferretdb_binary())
        missing = services.missing()
        if missing:
            print("devcluster: missing " + "; ".join(missing), file=sys.stderr)
            return 2
        secret_file = root / "jwt-secret"
        if not secret_file.exists():
            secret_file.write_text(secrets.token_urlsafe(48))
            secret_file.chmod(0o600)
        cluster: AppCluster | None = None
        try:
            backing = services.start()
            cluster = AppCluster(
                backing,
                root,
                gateways=args.gateways,
                workers=args.workers,
                port=args.port,
                jwt_secret=secret_file.read_text().strip(),
            )
            cluster.start()
            print(
                f"chatcluster devcluster running at {cluster.url}/ "
                f"({args.gateways} gateways, 1 api, {args.workers} workers; logs in {root})",
                flush=True,
            )
            return _supervise(cluster, stop)
        except (ChildFailed, TimeoutError) as exc:
            print(f"devcluster: {exc}", file=sys.stderr)
            return 1
        finally:
            print("devcluster: stopping", file=sys.stderr, flush=True)
            if cluster is not None:
                cluster.stop()
            services.stop()


def _supervise(cluster: AppCluster, stop: threading.Event) -> int:
    """Until asked to stop; a process that dies is reported (once), not restarted: haproxy
    keeps the others serving, as an ingress would."""
    reported: set[str] = set()
    while not stop.wait(1.0):
        for p in cluster.processes():
            if not p.running and p.name not in reported:
                reported.add(p.name)
                code = None if p.popen is None else p.popen.returncode
                print(f"devcluster: {p.name} exited ({code}); log {p.log_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
