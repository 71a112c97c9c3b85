"""A small process supervisor: start a child, wait until it is ready, stop it, keep its log.

`mirakuru` would do; it is not a dependency, and this is the part of it the harness needs:

- start: the argv (never a shell), stdout and stderr appended to one log file, stdin closed;
  the child runs in its own process group (a terminal's ^C reaches only the parent, which stops
  its children in order) and gets SIGKILL from the kernel if the parent dies
  (PR_SET_PDEATHSIG), so nothing outlives a killed test run or dev cluster.
- wait until ready: poll a readiness check with a growing interval, bounded by a timeout; a
  child that exits meanwhile fails at once, with the tail of its log.
- stop: its stop signal (SIGTERM unless the server wants another), SIGKILL after a timeout.
- kill: SIGKILL, no shutdown work at all, like a crashed node; start again on the same port.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class ChildFailed(RuntimeError):
    """A child process exited while it was expected to start."""


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll `check` (an exception counts as "not yet") until it holds, or raise TimeoutError
    naming `what`. The interval grows from 20 ms to 250 ms: quick for fast servers, cheap for
    slow ones."""
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
    """The child's whole environment; None inherits this process's."""
    port: int = 0
    ready: Callable[[Proc], bool] | None = None
    """Readiness check; None means ready once started."""
    stop_signal: int = signal.SIGTERM
    user: str | None = None
    cwd: Path | None = None
    popen: subprocess.Popen[bytes] | None = None
    log_offset: int = 0
    """Where this run's output starts in the log (earlier runs' output comes before it)."""

    def start(self, wait: bool = True) -> None:
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        with self.log_path.open("ab") as log:
            self.log_offset = log.tell()
            # The argv is built by the recipes from fixed names and ports, never a shell.
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

    def send_signal(self, signum: int) -> None:
        """Send `signum` if it is running (the first half of a stop, for stopping a group of
        children in parallel)."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signum)

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

    def restart(self, *, hard: bool = False) -> None:
        """Stop (or with `hard`, SIGKILL) and start again on the same port and data."""
        if hard:
            self.kill()
        else:
            self.stop()
        self.start()

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def logged(marker: bytes) -> Callable[[Proc], bool]:
    """A readiness check: `marker` appears in what the child wrote since its latest start (a
    restarted child is not ready on the strength of its previous run's line)."""

    def ready(p: Proc) -> bool:
        with p.log_path.open("rb") as log:
            log.seek(p.log_offset)
            return marker in log.read()

    return ready
