"""The built image: its metadata, its user, what it leaves out, and a read-only root."""

from __future__ import annotations

import json

import pytest

from tests.image.support import APP_UID, BuiltImage, RunContainer, run

pytestmark = [pytest.mark.image, pytest.mark.timeout(900)]


def inspect(image: BuiltImage) -> dict[str, object]:
    data = json.loads(run(["podman", "image", "inspect", image.ref]).stdout)
    assert isinstance(data, list)
    assert len(data) == 1
    first = data[0]
    assert isinstance(first, dict)
    return first


def config(image: BuiltImage) -> dict[str, object]:
    cfg = inspect(image)["Config"]
    assert isinstance(cfg, dict)
    return cfg


def test_image_size_is_reported(image: BuiltImage, record_property: pytest.RecordProperty) -> None:
    size_mib = image.size_bytes() / 2**20
    record_property("image_size_mib", round(size_mib, 1))
    record_property("image_build_seconds", round(image.seconds, 1))
    # A regression guard, not a target: the base is ~120 MiB, the venv well under 150 MiB.
    assert 50 < size_mib < 400, f"{image.ref} is {size_mib:.0f} MiB"


def test_oci_labels(image: BuiltImage) -> None:
    labels = config(image)["Labels"]
    assert isinstance(labels, dict)
    assert labels["org.opencontainers.image.title"] == "chatcluster"
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert labels["org.opencontainers.image.revision"] == "test"
    assert labels["org.opencontainers.image.base.name"] == image.base
    assert labels["org.opencontainers.image.version"]


def test_runs_as_fixed_non_root_user(image: BuiltImage, run_container: RunContainer) -> None:
    assert config(image)["User"] == f"{APP_UID}:{APP_UID}"
    ids = run_container(
        "-c", "import os; print(os.getuid(), os.getgid())", options=["--entrypoint", "python3"]
    ).stdout.split()
    assert ids == [str(APP_UID), str(APP_UID)]


def test_entrypoint_is_tini_then_the_cli(image: BuiltImage) -> None:
    assert config(image)["Entrypoint"] == ["/usr/bin/tini", "--", "chatcluster"]


def test_no_compiler_and_no_pip_in_the_runtime(run_container: RunContainer) -> None:
    script = (
        "import importlib.util, shutil, sys\n"
        "tools = [t for t in ('gcc', 'cc', 'c++', 'clang', 'make') if shutil.which(t)]\n"
        "pip = importlib.util.find_spec('pip') is not None\n"
        "print(tools, pip, sys.prefix)\n"
    )
    out = run_container("-c", script, options=["--entrypoint", "python3"]).stdout.strip()
    assert out == "[] False /opt/chatcluster"


def test_package_is_installed_with_its_operator_extra(run_container: RunContainer) -> None:
    script = (
        "import importlib.metadata as m, chat, chat_operator, kopf, kubernetes, yaml, tornado\n"
        "print(m.version('chatcluster'), m.version('kopf'), m.version('tornado'))\n"
    )
    out = run_container("-c", script, options=["--entrypoint", "python3"]).stdout.split()
    assert out == ["0.1.0", "1.45.2", "6.6.1"]


def test_code_is_not_writable_by_the_app_user(run_container: RunContainer) -> None:
    script = (
        "import os, chat\n"
        "print(os.access(os.path.dirname(chat.__file__), os.W_OK), os.access('/data', os.W_OK))\n"
    )
    out = run_container("-c", script, options=["--entrypoint", "python3"]).stdout.split()
    assert out == ["False", "True"]


def test_read_only_root_keeps_data_and_tmp_writable(run_container: RunContainer) -> None:
    """`--read-only` alone suffices: /data is the image's VOLUME, podman adds the /tmp tmpfs."""
    script = (
        "import pathlib, tempfile, chat, chat_operator\n"
        "pathlib.Path('/data/probe').write_text('ok')\n"
        "with tempfile.NamedTemporaryFile() as f:\n"
        "    print(f.name.startswith('/tmp/'), pathlib.Path('/data/probe').read_text())\n"
    )
    out = run_container("-c", script, options=["--read-only", "--entrypoint", "python3"])
    assert out.stdout.split() == ["True", "ok"]


def test_read_only_root_refuses_writes_even_to_root(run_container: RunContainer) -> None:
    """Proves --read-only really is read-only: root may write /opt, yet gets EROFS."""
    script = (
        "import pathlib\n"
        "try:\n"
        "    pathlib.Path('/opt/probe').write_text('no')\n"
        "    print('written')\n"
        "except OSError as exc:\n"
        "    print('refused', exc.errno)\n"
    )
    ro = run_container(
        "-c", script, options=["--read-only", "--user", "0", "--entrypoint", "python3"]
    )
    rw = run_container("-c", script, options=["--user", "0", "--entrypoint", "python3"])
    assert (ro.stdout.split(), rw.stdout.split()) == (["refused", "30"], ["written"])  # EROFS
