"""Bad specs are refused by the API server itself (schema + CEL), with a message that says
what is wrong; good examples are accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.k8s.controlplane import ControlPlane
from tests.k8s.support import example

pytestmark = pytest.mark.k8s

BAD = sorted((Path(__file__).resolve().parents[2] / "examples" / "bad").glob("*.yaml"))


def expected_message(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name} must start with '# expect: '"
    return first.removeprefix("# expect: ")


def test_bad_examples_exist() -> None:
    names = {p.stem for p in BAD}
    assert {
        "max-below-min",
        "negative-replicas",
        "unknown-field",
        "url-and-secretref",
        "invalid-image",
    } <= names


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_bad_spec_is_refused(
    control_plane: ControlPlane, release: str, namespace: str, path: Path
) -> None:
    result = control_plane.kubectl("apply", "-n", namespace, "-f", str(path), check=False)
    assert result.returncode != 0
    assert expected_message(path) in result.stderr
    assert control_plane.try_get("chatcluster", "bad", "-n", namespace) is None


@pytest.mark.parametrize("name", ["chatcluster-minimal.yaml", "chatcluster-full.yaml"])
def test_examples_are_accepted(
    control_plane: ControlPlane, release: str, namespace: str, name: str
) -> None:
    result = control_plane.kubectl(
        "apply", "--dry-run=server", "-n", namespace, "-f", str(example(name))
    )
    assert "created (server dry run)" in result.stdout


def test_redis_key_prefix_is_immutable(
    control_plane: ControlPlane, release: str, namespace: str
) -> None:
    control_plane.kubectl(
        "apply", "--dry-run=server", "-n", namespace, "-f", str(example("chatcluster-minimal.yaml"))
    )
    manifest = (
        example("chatcluster-minimal.yaml")
        .read_text()
        .replace("  version:", "  paused: true\n  version:")
    )
    control_plane.kubectl("apply", "-n", namespace, "-f", "-", stdin=manifest)
    result = control_plane.kubectl(
        "patch",
        "chatcluster",
        "chat",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec":{"redis":{"keyPrefix":"other:"}}}',
        check=False,
    )
    assert result.returncode != 0
    assert "redis.keyPrefix is immutable" in result.stderr


def test_overlong_name_is_refused(
    control_plane: ControlPlane, release: str, namespace: str
) -> None:
    manifest = (
        example("chatcluster-minimal.yaml")
        .read_text()
        .replace("name: chat\n", f"name: {'c' * 31}\n", 1)
    )
    result = control_plane.kubectl("apply", "-n", namespace, "-f", "-", stdin=manifest, check=False)
    assert result.returncode != 0
    assert "at most 30 characters" in result.stderr
