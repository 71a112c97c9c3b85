"""Dataclass fields that carry their OpenAPI schema: one declaration per field yields both the
CRD's structural schema (`schema_of`) and the typed, defaulted value the reconciler uses
(`load`), so a field's type, default, bounds and description are written once. (pydantic
would do the same; the operator avoids the dependency for ~200 lines.)

A field states
- its Python type in the annotation: ``str``/``int``/``bool`` become string/integer(int32)/
  boolean, ``int | str`` int-or-string, ``X | None`` an optional X, ``tuple[X, ...]`` an
  array, ``Mapping[str, X]`` a map, a dataclass a nested object;
- its default as the dataclass default (or a ``defaults=`` override where a shared class is
  used, e.g. each Dependency's Secret key); a field without a default is required;
- everything else in ``field(metadata=meta(...))``: the JSON key (camelCase of the name
  unless given), OpenAPI keywords (bounds, enum, pattern), description and CEL rules. A
  class's own CEL rules live in its ``RULES`` class variable.

Defaults come in three kinds, and the distinction is the contract with the API server:
- declared: a scalar default the schema declares, so the API server stores it and
  ``kubectl get -o yaml`` shows it; the loader fills the same value when the key is absent.
- implied (``implied=True``): filled by the loader only. The schema must not declare it when a
  CEL rule tests presence (``replicas``: a declared default would make ``has(self.replicas)``
  always true and break "replicas and autoscaling are mutually exclusive"). Its value belongs
  in the description; a test checks that it is there.
- empty: None, an empty list or map, never declared; a nested object with a default loads as
  if it were ``{}``, so its declared defaults apply as the API server would apply them.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any, TypeVar, Union

Schema = dict[str, Any]
T = TypeVar("T")

_META = "chatcluster.schema"


@dataclasses.dataclass(frozen=True)
class Prop:
    """What `meta` records in a field's metadata."""

    key: str | None
    keywords: Schema
    description: str | None
    rules: tuple[Schema, ...]
    items: Schema
    schema: Schema | None
    implied: bool
    inline: bool
    declare_empty: bool
    defaults: Mapping[str, Any]


def meta(
    *,
    key: str | None = None,
    description: str | None = None,
    rules: Sequence[Schema] = (),
    items: Schema | None = None,
    schema: Schema | None = None,
    extensions: Schema | None = None,
    implied: bool = False,
    inline: bool = False,
    declare_empty: bool = False,
    defaults: Mapping[str, Any] | None = None,
    **keywords: Any,
) -> Mapping[str, Prop]:
    """A field's schema, as ``dataclasses.field(metadata=meta(...))``; a field without
    metadata has a schema derived from its annotation alone.

    ``keywords`` (and ``extensions``, for names like ``x-kubernetes-list-type``) are OpenAPI
    keywords added to the schema derived from the annotation (``maxLength``, ``pattern``,
    ``enum``, ``minimum``...); ``items`` adds keywords to an array's items or a map's values;
    ``schema`` replaces the derived schema entirely, for values passed through to Kubernetes
    as they are (tolerations, affinity, resources), whose annotation only says "a mapping".
    ``inline`` merges a nested class's properties into this object (Go's
    ``json:",inline"``). ``declare_empty`` declares ``default: {}`` on a nested object, so the
    API server fills its defaults even when the object is omitted. ``defaults`` overrides the
    defaults of a nested class at this use, by (dotted) JSON key.
    """
    if "default" in keywords:
        # One place for a default: the dataclass's, which the schema then declares.
        raise TypeError("give the default to dataclasses.field(default=...), not to meta()")
    prop = Prop(
        key=key,
        keywords={**keywords, **(extensions or {})},
        description=description,
        rules=tuple(rules),
        items=dict(items or {}),
        schema=schema,
        implied=implied,
        inline=inline,
        declare_empty=declare_empty,
        defaults=dict(defaults or {}),
    )
    return {_META: prop}


_PLAIN = Prop(None, {}, None, (), {}, None, False, False, False, {})


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


@dataclasses.dataclass(frozen=True)
class Field:
    """One field of a model class, resolved: its JSON key, type and default."""

    name: str
    key: str
    hint: Any
    meta: Prop
    default: Any  # dataclasses.MISSING when the class gives none

    @property
    def optional(self) -> bool:
        return strip_none(self.hint) is not self.hint


@cache
def model_fields(cls: type) -> tuple[Field, ...]:
    hints = typing.get_type_hints(cls)
    result = []
    for f in dataclasses.fields(cls):
        prop = f.metadata.get(_META, _PLAIN)
        default = f.default
        if f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        result.append(Field(f.name, prop.key or camel(f.name), hints[f.name], prop, default))
    return tuple(result)


def strip_none(hint: Any) -> Any:
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (Union, types.UnionType) and type(None) in args:
        rest = tuple(a for a in args if a is not type(None))
        return rest[0] if len(rest) == 1 else Union[rest]  # noqa: UP007
    return hint


def is_model(hint: Any) -> bool:
    return isinstance(hint, type) and dataclasses.is_dataclass(hint)


def _sub(defaults: Mapping[str, Any], key: str) -> dict[str, Any]:
    prefix = key + "."
    return {k.removeprefix(prefix): v for k, v in defaults.items() if k.startswith(prefix)}


# --- the schema -------------------------------------------------------------------------


def schema_of(cls: type, defaults: Mapping[str, Any] | None = None) -> Schema:
    """The structural OpenAPI v3 schema of a model class."""
    properties, required, rules = _members(cls, defaults or {})
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    if rules:
        schema["x-kubernetes-validations"] = rules
    return schema


def _members(cls: type, defaults: Mapping[str, Any]) -> tuple[Schema, list[str], list[Schema]]:
    properties: Schema = {}
    required: list[str] = []
    rules: list[Schema] = list(getattr(cls, "RULES", ()))
    for f in model_fields(cls):
        if f.meta.inline:
            sub_props, sub_required, sub_rules = _members(f.hint, {**f.meta.defaults, **defaults})
            properties.update(sub_props)
            required += sub_required
            rules += [r for r in sub_rules if r not in rules]
            continue
        default = defaults.get(f.key, f.default)
        properties[f.key] = _field_schema(f, default, _sub(defaults, f.key))
        if default is dataclasses.MISSING:
            required.append(f.key)
    return properties, required, rules


def _field_schema(f: Field, default: Any, nested: Mapping[str, Any]) -> Schema:
    prop = f.meta
    if prop.schema is not None:
        derived = dict(prop.schema)
    else:
        derived = _type_schema(strip_none(f.hint), {**prop.defaults, **nested}, prop.items)
    # Key order only shapes the YAML a reader sees: the type, its bounds, then the members.
    members = {k: derived.pop(k) for k in _MEMBERS if k in derived}
    schema = {**derived, **prop.keywords}
    if _is_scalar(default) and not prop.implied:
        schema["default"] = default
    if prop.description:
        schema["description"] = prop.description
    schema.update(members)
    if prop.declare_empty:
        schema["default"] = {}
    if prop.rules:
        schema["x-kubernetes-validations"] = list(prop.rules)
    return schema


_MEMBERS = ("items", "additionalProperties", "properties", "required", "x-kubernetes-validations")


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | bool)


def _type_schema(hint: Any, defaults: Mapping[str, Any], items: Schema) -> Schema:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is bool:
        return {"type": "boolean"}
    if hint is int:
        return {"type": "integer", "format": "int32"}
    if hint is str:
        return {"type": "string"}
    if origin in (Union, types.UnionType) and set(args) == {int, str}:
        return {
            "x-kubernetes-int-or-string": True,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
        }
    if is_model(hint):
        return schema_of(hint, defaults)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return {"type": "array", "items": {**_type_schema(args[0], defaults, {}), **items}}
    if origin is Mapping and args[0] is str:
        values = {**_type_schema(args[1], defaults, {}), **items}
        return {"type": "object", "additionalProperties": values}
    raise TypeError(f"no schema for {hint!r}: give meta(schema=...)")


# --- the typed value --------------------------------------------------------------------


class ModelError(ValueError):
    """The input does not fit the model: the CRD schema and this code disagree."""


def load(cls: type[T], raw: Mapping[str, Any], path: str = "spec") -> T:
    """Build ``cls`` from a schema-validated object, filling every default."""
    return typing.cast(T, _load(cls, raw, path, {}))


def _load(cls: type, raw: Mapping[str, Any], path: str, defaults: Mapping[str, Any]) -> Any:
    if not isinstance(raw, Mapping):
        raise ModelError(f"{path}: expected an object, got {type(raw).__name__}")
    values: dict[str, Any] = {}
    for f in model_fields(cls):
        if f.meta.inline:
            values[f.name] = _load(f.hint, raw, path, {**f.meta.defaults, **defaults})
            continue
        where = f"{path}.{f.key}"
        nested = {**f.meta.defaults, **_sub(defaults, f.key)}
        value = raw.get(f.key)
        if value is not None:
            values[f.name] = _convert(strip_none(f.hint), value, where, nested)
        elif f.key in defaults:
            values[f.name] = defaults[f.key]
        elif f.default is not dataclasses.MISSING:
            # A nested object loads as if it were {}: its own declared defaults apply.
            empty = is_model(f.hint) and not f.optional
            values[f.name] = _load(f.hint, {}, where, nested) if empty else f.default
        else:
            raise ModelError(f"{where} is required")
    return cls(**values)


def _convert(hint: Any, value: Any, where: str, defaults: Mapping[str, Any]) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if is_model(hint):
        return _load(hint, value, where, defaults)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ModelError(f"{where}: expected a list, got {type(value).__name__}")
        return tuple(_convert(args[0], v, f"{where}[{i}]", defaults) for i, v in enumerate(value))
    if origin is Mapping:
        if not isinstance(value, Mapping):
            raise ModelError(f"{where}: expected an object, got {type(value).__name__}")
        return {k: _convert(args[1], v, f"{where}.{k}", defaults) for k, v in value.items()}
    if hint is Any:
        return value
    accepted = args if origin in (Union, types.UnionType) else (hint,)
    # bool is an int in Python; the schema keeps them apart, so must this check.
    if isinstance(value, bool) != (bool in accepted) or not isinstance(value, accepted):
        expected = " or ".join(getattr(a, "__name__", str(a)) for a in accepted)
        raise ModelError(f"{where}: expected {expected}, got {value!r}")
    return value
