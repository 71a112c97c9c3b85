"""The committed CRD YAML (crds/ and the chart copy) must be what crd.py generates."""

from __future__ import annotations

from pathlib import Path

import yaml
from chat_operator import crd

ROOT = Path(__file__).resolve().parents[2]
CRD_FILE = "chatclusters.chatcluster.dev.yaml"


def test_committed_crd_matches_generator() -> None:
    committed = (ROOT / "crds" / CRD_FILE).read_text()
    assert committed == crd.render(), "run: python -m chat_operator.crd > crds/" + CRD_FILE


def test_chart_ships_the_same_crd() -> None:
    chart = ROOT / "charts" / "chatcluster-operator" / "crds" / CRD_FILE
    assert chart.read_text() == (ROOT / "crds" / CRD_FILE).read_text()


def _walk(schema: dict[str, object], path: str = "") -> list[str]:
    """Strings without maxLength / arrays without maxItems make CEL cost unbounded."""
    problems: list[str] = []
    kind = schema.get("type")
    unbounded = kind == "string" and "maxLength" not in schema and "format" not in schema
    if unbounded and path and not path.endswith((".apiVersion", ".kind")):
        problems.append(path)
    if kind == "array" and "maxItems" not in schema:
        problems.append(path)
    for key, sub in (schema.get("properties") or {}).items():  # type: ignore[attr-defined]
        problems += _walk(sub, f"{path}.{key}")
    if isinstance(schema.get("items"), dict):
        problems += _walk(schema["items"], f"{path}[]")  # type: ignore[arg-type]
    if isinstance(schema.get("additionalProperties"), dict):
        problems += _walk(schema["additionalProperties"], f"{path}{{}}")  # type: ignore[arg-type]
    return problems


def test_every_string_and_list_is_bounded() -> None:
    schema = crd.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert _walk(schema) == []


def test_printer_columns_and_status_subresource() -> None:
    version = yaml.safe_load(crd.render())["spec"]["versions"][0]
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Ready",
        "Phase",
        "Version",
        "API",
        "WS",
        "Gen",
        "Observed",
        "Reason",
        "Age",
    ]
    assert version["subresources"] == {"status": {}}
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert {"observedGeneration", "conditions", "components", "endpoints", "version"} <= set(status)


def test_shared_schemas_are_written_out_not_aliased() -> None:
    """A YAML anchor/alias would make a reader (or a tool reading the chart) chase
    references; every field's schema is written where it applies."""
    assert "&id" not in crd.render()
    assert "*id" not in crd.render()
