"""The base image: debootstrapped and cached by recipe, and its registry twin for laptops."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest

from tests.image.support import CACHE, ROOT, run

pytestmark = [pytest.mark.image, pytest.mark.timeout(900)]


def debootstrap_packages() -> list[str]:
    script = (ROOT / "scripts/image/build-base.sh").read_text()
    match = re.search(r"^PACKAGES=(\S+)$", script, re.MULTILINE)
    assert match, "build-base.sh lists no PACKAGES"
    return sorted(match.group(1).split(","))


def test_base_is_cached_by_recipe_hash(base_image: str) -> None:
    recipe_hash = base_image.rsplit("-", 1)[1]
    assert (CACHE / f"base-{recipe_hash}" / "rootfs.tar").is_file()
    again = run(["bash", "scripts/image/build-base.sh"]).stdout.strip()
    assert again == base_image
    alias = run(["podman", "image", "inspect", "--format", "{{.Id}}", base_image]).stdout
    latest = "localhost/chatcluster-base:bookworm"
    assert run(["podman", "image", "inspect", "--format", "{{.Id}}", latest]).stdout == alias


def test_base_has_the_contract_and_no_compiler(base_image: str) -> None:
    script = (
        "import shutil, sys, venv, ssl\n"
        "print(sys.version_info[:2] == (3, 11), shutil.which('tini'), shutil.which('gcc'))\n"
    )
    out = run(["podman", "run", "--rm", "--network", "none", base_image, "python3", "-c", script])
    assert out.stdout.split() == ["True", "/usr/bin/tini", "None"]


@pytest.fixture(scope="module")
def registry_base(base_image: str) -> Iterator[str]:
    """scripts/image/base.Dockerfile built on the debootstrapped base standing in for
    debian:bookworm-slim (no registry here): proves its apt step and its contract."""
    ref = f"localhost/chatcluster-base-test:{uuid.uuid4().hex[:8]}"
    run(
        [
            "podman",
            "build",
            "--runtime",
            "runc",
            "--build-arg",
            f"DEBIAN_IMAGE={base_image}",
            "-t",
            ref,
            "-f",
            "scripts/image/base.Dockerfile",
            "scripts/image",
        ],
        timeout=600,
    )
    yield ref
    run(["podman", "rmi", "--force", ref], check=False)


def test_registry_base_installs_the_same_packages(registry_base: str) -> None:
    dockerfile = (ROOT / "scripts/image/base.Dockerfile").read_text()
    install = re.search(r"--no-install-recommends\s*\\?\s*\n?\s*([a-z0-9. \-]+)\\?", dockerfile)
    assert install, "base.Dockerfile installs nothing"
    assert sorted(install.group(1).split()) == debootstrap_packages()
    query = "dpkg-query -W -f '${Package} ${Status}\\n' " + " ".join(debootstrap_packages())
    out = run(["podman", "run", "--rm", "--network", "none", registry_base, "sh", "-c", query])
    assert all(line.endswith("install ok installed") for line in out.stdout.splitlines())
    assert len(out.stdout.splitlines()) == len(debootstrap_packages())
