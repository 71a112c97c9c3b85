"""The images the real node runs, built with podman exactly as docs/deploy.md builds them and
handed to containerd as `podman save` archives (no registry is reachable here):

- the chatcluster image under two version tags, so the rolling-upgrade test has somewhere to
  go. It is built with exactly the build arguments of tests/image (one build, two tags):
  podman's layer cache does not key LABEL layers on build-arg values, so a build with other
  labels would hand its labels to the next build of the same source;
- the backing-services image (Redis, PostgreSQL 15, FerretDB): scripts/image/services.Dockerfile.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from tests.image.support import BUILD_TIMEOUT_S, run
from tests.servers import ferretdb_binary

REPOSITORY = "localhost/chatcluster"
VERSIONS = ("1.0.0", "1.0.1")
SERVICES = "localhost/chatcluster-services:realnode"


@dataclass(frozen=True)
class NodeImages:
    archive: Path
    seconds: float

    @staticmethod
    def ref(version: str) -> str:
        return f"{REPOSITORY}:{version}"


def _build(base: str, tag: str, dockerfile: str, context: str, *args: str) -> None:
    run(
        [
            "podman", "build", "--runtime", "runc",
            "--build-arg", f"BASE_IMAGE={base}",
            *args, "-t", tag, "-f", dockerfile, context,
        ],
        timeout=BUILD_TIMEOUT_S,
    )  # fmt: skip


def build(workdir: Path) -> NodeImages:
    start = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    base = run(["bash", "scripts/image/build-base.sh"], timeout=BUILD_TIMEOUT_S)
    base_ref = base.stdout.strip().splitlines()[-1]
    first, *others = (NodeImages.ref(v) for v in VERSIONS)
    _build(
        base_ref, first, "Dockerfile", ".",
        # pip in the builder reaches PyPI only through the host's CA bundle (apt in the
        # services image must not get it: ssl-cert writes into /etc/ssl/certs).
        "-v", "/etc/ssl/certs:/etc/ssl/certs:ro",
        "--build-arg", "REVISION=test",
    )  # fmt: skip
    for ref in others:
        run(["podman", "tag", first, ref])
    context = workdir / "services-context"
    context.mkdir()
    shutil.copy2(ferretdb_binary(), context / "ferretdb")
    _build(base_ref, SERVICES, "scripts/image/services.Dockerfile", str(context))
    archive = workdir / "images.tar"
    refs = [NodeImages.ref(v) for v in VERSIONS] + [SERVICES]
    run(
        ["podman", "save", "--format", "docker-archive", "-m", "-o", str(archive), *refs],
        timeout=BUILD_TIMEOUT_S,
    )
    return NodeImages(archive=archive, seconds=round(time.monotonic() - start, 1))
