"""uv.lock is the one source of every installed version: `make dev` and `make test` sync .venv
from it (scripts/setup.d/20-python.sh), the image installs its export (image-requirements.txt).
These checks fail when pyproject.toml, the pinned uv or the export drift from it, or when a
development tool leaks into what `make dev` installs."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

from tests.servers import unavailable
from tools.harness.versions import cache_dir

ROOT = Path(__file__).resolve().parents[2]
LOCK: dict[str, Any] = tomllib.loads((ROOT / "uv.lock").read_text())
PYPROJECT: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGES: dict[str, dict[str, Any]] = {p["name"]: p for p in LOCK["package"]}
EXPORT = [
    "export", "--frozen", "--format", "requirements.txt", "--no-default-groups",
    "--extra", "operator", "--no-emit-project",
]  # fmt: skip


def uv_version() -> str:
    found = re.search(r"^UV_VERSION=(\S+)$", (ROOT / "scripts/uv.sh").read_text(), re.MULTILINE)
    assert found, "scripts/uv.sh must pin UV_VERSION"
    return found.group(1)


def uv() -> Path:
    path = cache_dir() / f"uv-{uv_version()}" / "bin" / "uv"
    if not path.exists():
        unavailable(f"{path} is missing (scripts/uv.sh installs it)")
    return path


def normalized(requirement: str) -> str:
    """The package name of a PEP 508 requirement, as uv.lock spells it."""
    found = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert found, requirement
    return re.sub(r"[-_.]+", "-", found.group(0)).lower()


def closure(names: set[str]) -> set[str]:
    """Every package the lock installs for `names`, on any platform (markers ignored)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(dep["name"] for dep in PACKAGES[name].get("dependencies", []))
    return seen


def without_header(requirements: str) -> list[str]:
    """The export minus uv's leading comment, which repeats the command line it was given."""
    lines = requirements.splitlines()
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    return lines


def test_scripts_install_the_uv_that_pyproject_requires() -> None:
    assert PYPROJECT["tool"]["uv"]["required-version"] == f"=={uv_version()}"


def test_lock_matches_pyproject() -> None:
    # Offline: validating an up-to-date lock needs no index; a stale one fails (exit 1).
    proc = subprocess.run(
        [uv(), "lock", "--check", "--offline"], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, f"uv.lock is stale, run `uv lock`:\n{proc.stderr}"


def test_make_dev_installs_no_development_tool() -> None:
    runtime = closure({normalized(r) for r in PYPROJECT["project"]["dependencies"]})
    tools = {
        normalized(r)
        for group in PYPROJECT["dependency-groups"].values()
        for r in group
        if isinstance(r, str)
    } | {normalized(r) for r in PYPROJECT["project"]["optional-dependencies"]["operator"]}
    assert {"pytest", "mypy", "playwright", "kopf", "kubernetes"} <= tools
    assert runtime.isdisjoint(tools), sorted(runtime & tools)
    assert {"tornado", "dramatiq", "redis", "asyncpg", "pymongo"} <= runtime


def test_image_requirements_are_the_lock_exported() -> None:
    proc = subprocess.run([uv(), *EXPORT], cwd=ROOT, capture_output=True, text=True, check=True)
    committed = (ROOT / "image-requirements.txt").read_text()
    assert without_header(committed) == without_header(proc.stdout), (
        "image-requirements.txt lags behind uv.lock: re-export it (docs/deploy.md, The image)"
    )
