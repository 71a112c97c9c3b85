"""skaffold.yaml, checked by the pinned skaffold itself: parse, profiles, a real build, render.

No cluster is involved: the kubeconfig's contexts point at a closed loopback port, so profile
activation by context can be tested and `render --offline` never calls an API server.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.image.support import ROOT, BuiltImage, run

pytestmark = [pytest.mark.image, pytest.mark.timeout(900)]

SCHEMA = "skaffold/v4beta13"
CHART = ROOT / "charts/chatcluster-operator"
EXAMPLE = ROOT / "examples/chatcluster-minimal.yaml"


def diagnose(
    skaffold: str, env: dict[str, str], *flags: str, context: str = "kind-chatcluster"
) -> dict[str, Any]:
    """The effective config after profiles, as skaffold itself resolves it."""
    kubeconfig = Path(env["KUBECONFIG"]).with_name(f"kubeconfig-{context}")
    proc = run(
        [skaffold, "diagnose", "--yaml-only", *flags], env={**env, "KUBECONFIG": str(kubeconfig)}
    )
    config = yaml.safe_load(proc.stdout)
    assert isinstance(config, dict)
    return config


def test_skaffold_is_the_pinned_build(skaffold: str, skaffold_env: dict[str, str]) -> None:
    assert run([skaffold, "version"], env=skaffold_env).stdout.strip() == "v2.16.1"


def test_config_is_on_the_current_schema(skaffold: str, skaffold_env: dict[str, str]) -> None:
    """diagnose upgrades older configs to the latest schema; ours needs no upgrade."""
    source = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    resolved = diagnose(skaffold, skaffold_env)
    assert source["apiVersion"] == resolved["apiVersion"] == SCHEMA
    artifact = resolved["build"]["artifacts"][0]
    assert artifact["image"] == "chatcluster"
    assert artifact["docker"]["dockerfile"] == "Dockerfile"
    releases = [r["name"] for r in resolved["deploy"]["helm"]["releases"]]
    assert releases == ["chatcluster-operator", "chatcluster-example"]


def test_dev_profile_activates_only_on_kind(skaffold: str, skaffold_env: dict[str, str]) -> None:
    on_kind = diagnose(skaffold, skaffold_env, context="kind-chatcluster")
    elsewhere = diagnose(skaffold, skaffold_env, context="prod")
    assert [(p["resourceName"], p["address"]) for p in on_kind["portForward"]] == [
        ("chat-api", "127.0.0.1")
    ]
    assert "portForward" not in elsewhere
    assert on_kind["build"]["local"]["push"] is False


def test_remote_profile_pushes_and_installs_only_the_operator(
    skaffold: str, skaffold_env: dict[str, str]
) -> None:
    remote = diagnose(skaffold, skaffold_env, "--profile", "remote", context="prod")
    assert remote["build"]["local"]["push"] is True
    assert remote["build"]["tagPolicy"] == {"gitCommit": {"variant": "AbbrevCommitSha"}}
    assert [r["name"] for r in remote["deploy"]["helm"]["releases"]] == ["chatcluster-operator"]


@pytest.fixture(scope="module")
def built(
    skaffold: str,
    skaffold_env: dict[str, str],
    podman_api: str,
    image: BuiltImage,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, dict[str, str]]]:
    """`skaffold build -p podman`: the image really built, its tag as skaffold recorded it.
    Same base and build args as the session's image, so podman's layer cache makes it quick."""
    if not CHART.is_dir():
        pytest.skip("charts/chatcluster-operator is not in the tree yet")
    out = tmp_path_factory.mktemp("skaffold-build") / "build.json"
    env = {
        **skaffold_env,
        "DOCKER_HOST": podman_api,
        "CHATCLUSTER_BASE_IMAGE": image.base,
        "CHATCLUSTER_REVISION": "test",
    }
    run(
        [skaffold, "build", "--profile", "podman", "--file-output", str(out)],
        env=env,
        timeout=900,
    )
    builds = json.loads(out.read_text())["builds"]
    assert [b["imageName"] for b in builds] == ["chatcluster"]
    tag = str(builds[0]["tag"])
    image_id = run(["podman", "image", "inspect", "--format", "{{.Id}}", tag]).stdout.strip()
    yield tag, {**env, "BUILD_OUTPUT": str(out)}
    # skaffold tagged the image twice (input digest, image ID): drop both tags, keep the layers.
    listing = run(
        ["podman", "images", "--no-trunc", "--format", "{{.Id}} {{.Repository}}:{{.Tag}}"]
    )
    for line in listing.stdout.splitlines():
        found_id, _, name = line.partition(" ")
        if found_id.removeprefix("sha256:") == image_id.removeprefix("sha256:") and re.fullmatch(
            r"(localhost|docker\.io/library)/chatcluster:[0-9a-f]{64}", name
        ):
            run(["podman", "rmi", name], check=False)


def test_podman_profile_builds_the_image(built: tuple[str, dict[str, str]]) -> None:
    tag, _ = built
    assert re.fullmatch(r"chatcluster:[0-9a-f]{64}", tag), tag
    user = run(["podman", "image", "inspect", "--format", "{{.Config.User}}", tag]).stdout
    assert user.strip() == "10001:10001"


def crd_image_patterns() -> dict[str, str]:
    crd = yaml.safe_load((CHART / "crds/chatclusters.chatcluster.dev.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    image = schema["properties"]["spec"]["properties"]["image"]["properties"]

    def pattern(field: dict[str, object]) -> str:
        """The field's `pattern`, or the regex of its CEL `self.matches(r'...')` rule."""
        if "pattern" in field:
            return str(field["pattern"])
        rules = field["x-kubernetes-validations"]
        assert isinstance(rules, list)
        match = re.search(r"self\.matches\(r'(.*)'\)", str(rules[0]["rule"]))
        assert match, rules
        return match.group(1)

    return {key: pattern(image[key]) for key in ("repository", "tag")}


def test_render_wires_the_built_image_into_operator_and_example(
    skaffold: str, built: tuple[str, dict[str, str]]
) -> None:
    if not EXAMPLE.is_file():
        pytest.skip("examples/chatcluster-minimal.yaml is not in the tree yet")
    tag, env = built
    proc = run(
        [
            skaffold,
            "render",
            "--profile",
            "podman",
            "--build-artifacts",
            env["BUILD_OUTPUT"],
            "--offline=true",
        ],
        env=env,
    )
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    by_kind = {(d["kind"], d["metadata"]["name"]): d for d in docs}

    operator = by_kind[("Deployment", "chatcluster-operator")]
    containers = operator["spec"]["template"]["spec"]["containers"]
    assert [c["image"] for c in containers] == [tag]

    example = yaml.safe_load(Path(EXAMPLE).read_text())
    cluster = by_kind[("ChatCluster", example["metadata"]["name"])]
    repository, image_tag = tag.split(":", 1)
    assert cluster["spec"]["image"]["repository"] == repository
    assert cluster["spec"]["image"]["tag"] == image_tag
    # The rest of the example is applied unchanged, and the image passes the CRD's validation.
    assert {k: v for k, v in cluster["spec"].items() if k != "image"} == {
        k: v for k, v in example["spec"].items() if k != "image"
    }
    patterns = crd_image_patterns()
    assert re.fullmatch(patterns["repository"], repository)
    assert re.fullmatch(patterns["tag"], image_tag)
