"""The CRD schema and the typed spec come from one model (chat_operator.spec): every default
is stated once, so what the API server stores and what the operator assumes cannot drift."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from chat_operator.component import API_REPLICAS, WORKER_REPLICAS
from chat_operator.model import ModelError
from chat_operator.spec import parse

from tests.operator.operator_examples import load_example
from tests.operator.spec_walk import (
    EMPTY_OBJECTS,
    REQUIRED_ONLY,
    leaves,
    server_defaults,
    spec_schema,
    typed_required_only,
)

SPECS = {
    "required-only": REQUIRED_ONLY,
    "empty-objects": EMPTY_OBJECTS,
    "minimal": load_example("chatcluster-minimal.yaml")["spec"],
    "full": load_example("chatcluster-full.yaml")["spec"],
}


@pytest.mark.parametrize("raw", SPECS.values(), ids=SPECS.keys())
def test_operator_defaults_equal_the_api_servers(raw: dict[str, Any]) -> None:
    """Parsing what the user wrote gives the same typed spec as parsing what the API server
    stores after applying the CRD's defaults (the same check against a real API server is in
    tests/k8s/test_validation.py)."""
    stored = server_defaults(raw, spec_schema())
    assert stored != raw or raw is SPECS["full"]  # defaulting had something to do
    assert parse(raw) == parse(stored)


@pytest.mark.parametrize("raw", [REQUIRED_ONLY, EMPTY_OBJECTS], ids=["required-only", "empty"])
def test_each_default_is_stated_once(raw: dict[str, Any]) -> None:
    """A field the user left out has either the default the CRD declares, or an implied one
    that the schema must not declare and whose value its description gives, or none."""
    checked = 0
    for leaf in leaves(parse(raw), spec_schema()):
        if leaf.path[-1] in _given(raw, leaf.path):
            continue
        if leaf.field.meta.implied:
            assert "default" not in leaf.schema, leaf.name
            description = leaf.schema["description"]
            assert re.search(rf"\bdefault\b.*\b{leaf.value}\b", description), leaf.name
        elif leaf.value is None:
            assert "default" not in leaf.schema, leaf.name
        else:
            assert leaf.schema.get("default") == leaf.value, leaf.name
        checked += 1
    assert checked >= 17


def _given(raw: Any, path: tuple[str | int, ...]) -> Any:
    """The (sub)object of the input that holds the leaf, or {} when it was not there."""
    for part in path[:-1]:
        try:
            raw = raw[part]
        except (KeyError, IndexError, TypeError):
            return {}
    return raw if isinstance(raw, dict) else {}


def test_component_replica_defaults() -> None:
    spec = parse(EMPTY_OBJECTS)
    assert spec.websocket.replicas == API_REPLICAS
    assert spec.workers[0].component.replicas == WORKER_REPLICAS
    assert typed_required_only().api.replicas == API_REPLICAS


def test_per_use_defaults_of_a_shared_class() -> None:
    """SecretKey is one class; each use gives the key it defaults to, in schema and spec."""
    spec = parse(EMPTY_OBJECTS)
    keys = {name: getattr(spec, name).secret.key for name in ("redis", "postgres", "mongodb")}
    assert keys == {"redis": "url", "postgres": "dsn", "mongodb": "uri"}
    assert spec.jwt_secret.key == "jwt-secret"
    schema = spec_schema()["properties"]
    for name, key in keys.items():
        assert schema[name]["properties"]["secretRef"]["properties"]["key"]["default"] == key


def test_derived_values() -> None:
    spec = parse({**REQUIRED_ONLY, "image": {"tag": "t1", "digest": "sha256:" + "a" * 64}})
    assert spec.image_reference == "ghcr.io/chatcluster/chatcluster:t1@sha256:" + "a" * 64
    assert typed_required_only().image_reference == "ghcr.io/chatcluster/chatcluster:1.0.0"
    assert [ref.name for ref in parse(EMPTY_OBJECTS).secret_refs] == [
        "chat-jwt",
        "r",
        "p",
        "m",
    ]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"version": None}, "spec.version is required"),
        ({"workers": [{"queues": ["persist"]}]}, "spec.workers[0].name is required"),
        ({"api": {"replicas": "3"}}, "spec.api.replicas: expected int, got '3'"),
        ({"paused": 1}, "spec.paused: expected bool, got 1"),
        ({"api": {"replicas": True}}, "spec.api.replicas: expected int, got True"),
        ({"ingress": []}, "spec.ingress: expected an object"),
    ],
)
def test_input_the_model_refuses_names_the_field(change: dict[str, Any], named: str) -> None:
    """The API server refuses these first; if the CRD in a cluster is out of date, the
    operator still says which field it could not read."""
    raw = copy.deepcopy(REQUIRED_ONLY)
    raw.update(change)
    with pytest.raises(ModelError, match=named.replace("[", r"\[").replace("]", r"\]")):
        parse({k: v for k, v in raw.items() if v is not None})
