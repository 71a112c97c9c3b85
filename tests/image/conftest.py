"""Fixtures for the container image: the base, one build per session, containers to run.

The expensive parts happen once per session and are cached across sessions: the debootstrapped
base (scripts/image/build-base.sh, keyed by its recipe), podman's layer cache for the
Dockerfile, and skaffold (scripts/image/build-skaffold.sh, keyed by version). Without podman
these tests skip on a laptop, but fail under CI=true, where a skip would hide a broken setup.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence

import pytest

from tests.image.support import (
    BUILD_TIMEOUT_S,
    BuiltImage,
    RunContainer,
    Server,
    StartServer,
    free_port,
    run,
    unavailable,
)


@pytest.fixture(scope="session")
def podman() -> str:
    path = shutil.which("podman")
    if path is None:
        unavailable("podman is not installed")
    return path


@pytest.fixture(scope="session")
def base_image(podman: str) -> str:
    if shutil.which("debootstrap") is None:
        unavailable("debootstrap is not installed")
    proc = run(["bash", "scripts/image/build-base.sh"], timeout=BUILD_TIMEOUT_S)
    ref = proc.stdout.strip().splitlines()[-1]
    assert ref.startswith("localhost/chatcluster-base:bookworm-"), ref
    return ref


@pytest.fixture(scope="session")
def image(base_image: str) -> Iterator[BuiltImage]:
    """The Dockerfile built once per session exactly as docs/deploy.md says to build it."""
    ref = f"localhost/chatcluster:test-{uuid.uuid4().hex[:8]}"
    start = time.monotonic()
    run(
        [
            "podman",
            "build",
            "--runtime",
            "runc",
            # pip in the builder reaches PyPI only through the host's CA bundle.
            "-v",
            "/etc/ssl/certs:/etc/ssl/certs:ro",
            "--build-arg",
            f"BASE_IMAGE={base_image}",
            "--build-arg",
            "REVISION=test",
            "-t",
            ref,
            "-f",
            "Dockerfile",
            ".",
        ],
        timeout=BUILD_TIMEOUT_S,
    )
    built = BuiltImage(ref=ref, base=base_image, seconds=time.monotonic() - start)
    yield built
    # The tag goes; the layers stay in podman's cache for the next session's build.
    run(["podman", "rmi", "--force", ref], check=False)


@pytest.fixture
def run_container(image: BuiltImage) -> RunContainer:
    """`podman run --rm` the image to completion; options go before the image, args after."""

    def _run(
        *args: str, options: Sequence[str] = (), check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return run(
            ["podman", "run", "--rm", "--network", "none", *options, image.ref, *args],
            check=check,
        )

    return _run


@pytest.fixture(scope="session")
def start_server(image: BuiltImage) -> StartServer:
    """Start a long-running container published on 127.0.0.1 only; removed on exit."""

    @contextlib.contextmanager
    def _start(
        *args: str, container_port: int = 8000, options: Sequence[str] = ()
    ) -> Iterator[Server]:
        name = f"chatcluster-test-{uuid.uuid4().hex[:10]}"
        port = free_port()
        run(
            [
                "podman",
                "run",
                "--detach",
                "--name",
                name,
                "--publish",
                f"127.0.0.1:{port}:{container_port}",
                *options,
                image.ref,
                *args,
            ]
        )
        try:
            yield Server(name=name, url=f"http://127.0.0.1:{port}")
        finally:
            run(["podman", "rm", "--force", "--time", "5", name], check=False)

    return _start
