"""Example ChatClusters as parsed builder input, shared by the operator unit tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from chat_operator.builders import Cluster
from chat_operator.spec import parse

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
UID = "0f6c1e0a-1111-4222-8333-444455556666"


def load_example(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text())
    return doc


def cluster_from(doc: dict[str, Any], namespace: str = "team-a") -> Cluster:
    meta = doc["metadata"]
    return Cluster(meta["name"], namespace, UID, parse(doc["spec"]))
