"""`helm template` of the operator chart with the pinned helm (tests/k8s builds it)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitoring import generate
from tests.k8s.k8s_binaries import locate


def template(tmp_path: Path, *sets: str) -> list[dict[str, Any]]:
    """The rendered documents; each of ``sets`` is a `--set` argument. Raises
    CalledProcessError (with helm's message in stderr) when the chart refuses the values."""
    helm = locate().helm
    if not helm.exists():
        pytest.skip("the pinned helm is not built")
    env = {
        **os.environ,
        **{k: str(tmp_path / k) for k in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME")},
    }
    args = [str(helm), "template", "t", str(generate.CHART)]
    for value in sets:
        args += ["--set", value]
    out = subprocess.run(
        args, capture_output=True, text=True, env=env, timeout=60, check=True
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]
