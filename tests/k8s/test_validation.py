"""Bad specs are refused by the API server itself (schema + CEL), with a message that says
what is wrong; good examples are accepted."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from chat_operator.spec import parse

from tests.k8s.controlplane import ControlPlane
from tests.k8s.support import example
from tests.operator.spec_walk import EMPTY_OBJECTS, REQUIRED_ONLY, leaves, spec_schema

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
        "limits-below-requests",
        "invalid-ingress-host",
        "pdb-over-100-percent",
        "label-key-with-space",
        "version-with-build-metadata",
        "credentials-in-url-query",
        # Each of these was accepted once, and then its Deployment or Ingress was refused.
        "ephemeral-storage-limit-below-request",
        "toleration-exists-with-value",
        "toleration-invalid-key",
        "toleration-without-key",
        "toleration-seconds-without-noexecute",
        "toleration-invalid-value",
        "invalid-priority-class-name",
        "invalid-ingress-class-name",
    } <= names


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_bad_spec_is_refused(
    control_plane: ControlPlane, release: str, namespace: str, path: Path
) -> None:
    result = control_plane.kubectl("apply", "-n", namespace, "-f", str(path), check=False)
    assert result.returncode != 0
    assert expected_message(path) in result.stderr
    assert "spec." in result.stderr, "the refusal names the field"
    assert control_plane.try_get("chatcluster", "bad", "-n", namespace) is None


def _cluster(name: str, spec: dict[str, Any]) -> str:
    doc = {
        "apiVersion": "chatcluster.dev/v1alpha1",
        "kind": "ChatCluster",
        "metadata": {"name": name},
        "spec": spec,
    }
    return str(yaml.safe_dump(doc))


@pytest.mark.parametrize("raw", [REQUIRED_ONLY, EMPTY_OBJECTS], ids=["required-only", "empty"])
def test_api_server_stores_the_defaults_the_operator_assumes(
    control_plane: ControlPlane, release: str, namespace: str, raw: dict[str, Any]
) -> None:
    """The operator parses the spec as written (defaults from the model) into the same typed
    spec as what the API server stores (defaults from the CRD generated from the model)."""
    result = control_plane.kubectl(
        "apply", "--dry-run=server", "-o", "json", "-n", namespace, "-f", "-",
        stdin=_cluster("defaults", raw),
    )  # fmt: skip
    stored = json.loads(result.stdout)["spec"]
    typed = parse(raw)
    assert parse(stored) == typed
    # Wherever the server defaults (inside objects that exist, or that default to {}), it
    # stores the very value the operator assumes.
    declared = [
        leaf
        for leaf in leaves(typed, spec_schema())
        if "default" in leaf.schema and _get(stored, leaf.path[:-1]) is not None
    ]
    stored_defaults = {leaf.name: _get(stored, leaf.path) for leaf in declared}
    assert stored_defaults == {leaf.name: leaf.value for leaf in declared}
    assert len(declared) >= (12 if raw is REQUIRED_ONLY else 25)


def _get(doc: Any, path: tuple[str | int, ...]) -> Any:
    for part in path:
        if doc is None:
            return None
        doc = doc[part] if isinstance(part, int) else doc.get(part)
    return doc


def _set(doc: dict[str, Any], path: tuple[str | int, ...], value: Any) -> None:
    node: Any = doc
    for part in path[:-1]:
        node = node[part] if isinstance(part, int) else node.setdefault(part, {})
    node[path[-1]] = value


def test_every_lower_bound_in_the_model_is_enforced_naming_the_field(
    control_plane: ControlPlane, release: str, namespace: str
) -> None:
    """One ChatCluster with every integer the model bounds from below set one under its
    minimum: the API server refuses it and names each of those fields."""
    raw = copy.deepcopy(EMPTY_OBJECTS)
    bounded = [
        leaf
        for leaf in leaves(parse(raw), spec_schema())
        if "minimum" in leaf.schema and not isinstance(leaf.value, bool)
    ]
    assert len(bounded) >= 15
    for leaf in bounded:
        _set(raw, leaf.path, leaf.schema["minimum"] - 1)
    result = control_plane.kubectl(
        "apply", "--dry-run=server", "-n", namespace, "-f", "-",
        stdin=_cluster("bounds", raw), check=False,
    )  # fmt: skip
    assert result.returncode != 0
    missing = [leaf.name for leaf in bounded if f"{leaf.name}: Invalid value" not in result.stderr]
    assert missing == [], result.stderr


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


def _paused_minimal(version: str = "1.0.0", name: str = "chat") -> str:
    return (
        example("chatcluster-minimal.yaml")
        .read_text()
        .replace('  version: "1.0.0"', f'  paused: true\n  version: "{version}"')
        .replace("name: chat\n", f"name: {name}\n", 1)
    )


def test_downgrade_is_refused_unless_allowed(
    control_plane: ControlPlane, release: str, namespace: str
) -> None:
    control_plane.kubectl("apply", "-n", namespace, "-f", "-", stdin=_paused_minimal("1.2.0"))
    refused = control_plane.kubectl(
        "apply", "-n", namespace, "-f", "-", stdin=_paused_minimal("1.1.9"), check=False
    )
    assert refused.returncode != 0
    assert "spec.version" in refused.stderr
    assert "version 1.1.9 is older than 1.2.0" in refused.stderr
    assert "allowDowngrade" in refused.stderr
    # Upgrades, pre-release to release, and a forced downgrade are all accepted.
    control_plane.kubectl("apply", "-n", namespace, "-f", "-", stdin=_paused_minimal("1.3.0-rc.1"))
    control_plane.kubectl("apply", "-n", namespace, "-f", "-", stdin=_paused_minimal("v1.3.0"))
    forced = _paused_minimal("1.0.0").replace(
        "  paused: true", "  paused: true\n  allowDowngrade: true"
    )
    control_plane.kubectl("apply", "-n", namespace, "-f", "-", stdin=forced)
    got = control_plane.get_json("chatcluster", "chat", "-n", namespace)
    assert got["spec"]["version"] == "1.0.0"


@pytest.mark.parametrize("name", ["a-worker-b", "chat-workers", "x-migrate-1"])
def test_names_whose_children_could_collide_are_refused(
    control_plane: ControlPlane, release: str, namespace: str, name: str
) -> None:
    """Cluster ``a`` with pool ``b-api`` would own Deployment ``a-worker-b-api``: the same
    name as cluster ``a-worker-b``'s api Deployment."""
    result = control_plane.kubectl(
        "apply", "-n", namespace, "-f", "-", stdin=_paused_minimal(name=name), check=False
    )
    assert result.returncode != 0
    assert "must not contain '-worker' or '-migrate'" in result.stderr
