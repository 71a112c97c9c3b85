"""Fixtures for the container image: the base, one build per session, containers to run.

The expensive parts happen once per session and are cached across sessions: the debootstrapped
base (scripts/image/build-base.sh, keyed by its recipe), podman's layer cache for the
Dockerfile, and skaffold (scripts/image/build-skaffold.sh, keyed by version). Without podman
these tests skip on a laptop, but fail under CI=true, where a skip would hide a broken setup.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.image.support import (
    BUILD_TIMEOUT_S,
    CACHE,
    ROOT,
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


@pytest.fixture(scope="session")
def skaffold() -> str:
    """The skaffold that scripts/setup.d/50-image.sh built, at the version the script pins."""
    script = (ROOT / "scripts/image/build-skaffold.sh").read_text()
    match = re.search(r'SKAFFOLD_VERSION="\$\{SKAFFOLD_VERSION:-(v[0-9.]+)\}"', script)
    assert match, "build-skaffold.sh pins no version"
    path = CACHE / f"skaffold-{match.group(1)}" / "skaffold"
    if not os.access(path, os.X_OK):
        unavailable(f"{path} is not built (bash scripts/image/build-skaffold.sh)")
    return str(path)


@pytest.fixture(scope="session")
def helm() -> str:
    """helm from PATH, else the one scripts/setup.d/40-k8s.sh built into the cache."""
    found = shutil.which("helm") or next(
        (str(p) for p in sorted(CACHE.glob("helm-*/bin/helm"), reverse=True)), None
    )
    if found is None:
        unavailable("helm is not installed (scripts/setup.d/40-k8s.sh builds it)")
    return found


KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- {name: local, cluster: {server: "https://127.0.0.1:9"}}
users:
- {name: local, user: {token: unused}}
contexts:
- {name: kind-chatcluster, context: {cluster: local, user: local}}
- {name: prod, context: {cluster: local, user: local}}
current-context: CONTEXT
"""
CONTEXTS = ("kind-chatcluster", "prod")


@pytest.fixture(scope="session")
def skaffold_env(
    skaffold: str, helm: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """An environment for skaffold: its own HOME (global config with metrics off, no update
    check), helm on PATH, and a kubeconfig per context (kubeconfig-<context> beside it, the
    first one current), each pointing at a closed loopback port: profile activation by context
    works and nothing can reach a real cluster."""
    home = tmp_path_factory.mktemp("skaffold-home")
    for context in CONTEXTS:
        (home / f"kubeconfig-{context}").write_text(KUBECONFIG.replace("CONTEXT", context))
    env = {
        **os.environ,
        "HOME": str(home),
        "KUBECONFIG": str(home / f"kubeconfig-{CONTEXTS[0]}"),
        "PATH": f"{Path(helm).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "SKAFFOLD_UPDATE_CHECK": "false",
        "SKAFFOLD_INTERACTIVE": "false",
    }
    env.pop("DOCKER_HOST", None)
    run([skaffold, "config", "set", "--global", "collect-metrics", "false"], env=env)
    return env


@pytest.fixture(scope="session")
def podman_api(podman: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`podman system service` on a private socket: skaffold reads image IDs through the
    Docker API. Yields a DOCKER_HOST value; the service is stopped by its pid."""
    sock = tmp_path_factory.mktemp("podman-api") / "podman.sock"
    proc = subprocess.Popen(
        [podman, "system", "service", "--time=0", f"unix://{sock}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"podman system service did not create {sock}")
            time.sleep(0.1)
        yield f"unix://{sock}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
