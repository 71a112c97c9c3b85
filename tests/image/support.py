"""Helpers shared by the image tests: running commands, the built image, servers."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

from tools.harness.net import free_port as free_port  # re-exported: the image tests import it here
from tools.harness.versions import cache_dir

ROOT = Path(__file__).resolve().parents[2]
CACHE = cache_dir()
APP_UID = 10001
BUILD_TIMEOUT_S = 900
RUN_TIMEOUT_S = 120


def unavailable(reason: str) -> NoReturn:
    """Skip on a laptop without the tool; fail in CI, where setup must have provided it."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: scripts/setup.sh should have provided it)")
    pytest.skip(reason)


def run(
    args: Sequence[str],
    *,
    timeout: float = RUN_TIMEOUT_S,
    check: bool = True,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command from the repo root, capturing text; a failure shows both streams."""
    proc = subprocess.run(
        list(args),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
        env=env,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} exited {proc.returncode}\n"
            f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"
        )
    return proc


@dataclass(frozen=True)
class BuiltImage:
    ref: str
    base: str
    seconds: float

    def size_bytes(self) -> int:
        return int(run(["podman", "image", "inspect", "--format", "{{.Size}}", self.ref]).stdout)


@dataclass(frozen=True)
class Server:
    name: str
    url: str

    def logs(self) -> str:
        proc = run(["podman", "logs", self.name], check=False)
        return proc.stdout + proc.stderr


RunContainer = Callable[..., subprocess.CompletedProcess[str]]
StartServer = Callable[..., AbstractContextManager[Server]]
