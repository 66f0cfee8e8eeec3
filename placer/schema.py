"""JSON Schemas of the YAML file kinds, so editors can validate and complete them.

A schema is only useful if it says what the loaders say: an editor that underlines a valid file
teaches users to ignore it, and one that misses a mistake gives false comfort. So the schema
describes the file as written, not the model it becomes:

- the keyed form (``jobs: {train: …}``) beside the list form where the loader accepts both, and
  only the keyed form where it accepts only that (an inventory's ``sites``);
- shorthands a validator expands before the model sees them: a single string where a list is
  allowed (``sites: eea``), a plain list for a location set, a field the loader fills in (a
  site's ``kind``, inferred from its location; a limit rule's ``sites``);
- quantities as a number or text matching :mod:`placer.units`' grammar (``"12 hours"`` is
  refused, as the parser refuses it);
- the header: ``apiVersion``/``kind`` optional where the loader infers them, required for a
  policy file.

Shorthands of field validators are found by asking the validator (see :class:`_FileSchema`),
so a new one in the models is described without a change here; ``tests/test_validate_schema.py``
checks every shipped file against these schemas and a set of known-bad snippets against them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue

KINDS = ("pipeline", "inventory", "policy", "plan", "scenario")
"""The kinds ``placer schema`` knows; ``scenario`` is the simulator's (see :func:`schema_of`)."""

_HEADER = {"pipeline": "Pipeline", "inventory": "Inventory", "policy": "PolicySet"}
# Fields the YAML form keys by name, and whether it may also be a list (the loader's choice).
_KEYED: dict[str, tuple[tuple[str, bool], ...]] = {
    "pipeline": (("jobs", True), ("datasets", True)),
    "inventory": (("sites", False),),
}
# Fields a model-level validator fills in when they are left out: model title → (field, the
# values of other fields that must hold for it to be filled; empty: always).
_FILLED: dict[str, tuple[tuple[str, Mapping[str, str]], ...]] = {
    "Site": (("kind", {}),),  # inferred from location (onprem: → onprem, else cloud)
    "Rule": (("sites", {"effect": "limit"}),),  # a limit without sites caps spend everywhere
}
_PROBE = "\x00placer-schema-probe"


def _probe(fn: Callable[[Any], Any], value: Any) -> Any:
    try:
        return fn(value)
    except Exception:  # a validator that refuses the probe has no shorthand for it
        return None


class _FileSchema(GenerateJsonSchema):
    """pydantic's generator, plus what before-validators accept that the model type does not.

    A before-validator is asked (with a probe value; validators are pure) whether it expands:
    a string into a one-item list (``sites: eea``), a mapping's string values into lists
    (``removes_tags: {classification: pii}``), or a list into a mapping holding it
    (a location set written as its ``include`` list). Each such shorthand becomes an
    ``anyOf`` alternative. Validators that take pydantic's ``info`` are left as they are.
    """

    def function_before_schema(self, schema: Any) -> JsonSchemaValue:
        inner = super().function_before_schema(schema)
        func = schema["function"]
        if func["type"] != "no-info":
            return inner
        fn = func["function"]
        if inner.get("type") == "array" and _probe(fn, _PROBE) in ((_PROBE,), [_PROBE]):
            return {"anyOf": [inner.get("items", {}), inner]}
        values = inner.get("additionalProperties")
        if (inner.get("type") == "object" and isinstance(values, dict)
                and values.get("type") == "array"
                and _probe(fn, {"k": _PROBE}) in ({"k": (_PROBE,)}, {"k": [_PROBE]})):
            return {**inner, "additionalProperties": {"anyOf": [values.get("items", {}), values]}}
        listed = _probe(fn, [_PROBE])
        props = inner.get("properties", {})
        if (isinstance(listed, dict) and len(listed) == 1
                and next(iter(listed.values())) == [_PROBE] and next(iter(listed)) in props):
            return {"anyOf": [props[next(iter(listed))], inner]}
        return inner


def _model(kind: str) -> type[BaseModel]:
    from placer.models import Inventory, Pipeline, Plan
    from placer.policy import PolicyFile

    models: dict[str, type[BaseModel]] = {
        "pipeline": Pipeline, "inventory": Inventory, "policy": PolicyFile, "plan": Plan,
    }
    return models[kind]


def _defs(schema: dict[str, Any]) -> dict[str, Any]:
    defs: dict[str, Any] = schema.setdefault("$defs", {})
    return defs


def _keyed_item(schema: dict[str, Any], items: dict[str, Any], nullable: bool) -> dict[str, Any]:
    """The item schema for the keyed form: the same, but ``name`` may be left out (it is the
    key); with ``nullable``, an empty entry (``d:``) is an item with only its name, valid when
    nothing else is required (a dataset, not a job)."""
    ref = items.get("$ref", "")
    if not ref.startswith("#/$defs/"):
        return items
    name = ref.removeprefix("#/$defs/")
    spec = copy.deepcopy(_defs(schema)[name])
    spec["required"] = [r for r in spec.get("required", []) if r != "name"]
    _defs(schema)[f"{name}ByName"] = spec
    keyed: dict[str, Any] = {"$ref": f"#/$defs/{name}ByName"}
    if nullable and not spec["required"]:
        return {"anyOf": [keyed, {"type": "null"}]}
    return keyed


def _closed_branches(schema: dict[str, Any]) -> None:
    """pydantic sets ``additionalProperties: false`` on a model's schema after the shorthand
    became an ``anyOf``; it belongs to the object alternative, not beside a list one."""
    for spec in _defs(schema).values():
        if "anyOf" in spec and "additionalProperties" in spec and "properties" not in spec:
            closed = spec.pop("additionalProperties")
            for branch in spec["anyOf"]:
                if branch.get("type") == "object":
                    branch["additionalProperties"] = closed


_BOUNDS = {"gt": "exclusiveMinimum", "ge": "minimum", "lt": "exclusiveMaximum", "le": "maximum"}


def _quantity_bounds(node: Any) -> None:
    """A bound on a quantity (``bandwidth: Field(gt=0)``) reaches the schema as pydantic's own
    ``gt`` beside the quantity's ``anyOf``, a keyword JSON Schema does not know: it becomes
    the bound of the number alternative (the text one is bounded by the loader only)."""
    todo = [node]
    while todo:
        item = todo.pop()
        if isinstance(item, list):
            todo.extend(item)
            continue
        if not isinstance(item, dict):
            continue
        for ours, theirs in _BOUNDS.items():
            if ours in item and "anyOf" in item:
                bound = item.pop(ours)
                for branch in item["anyOf"]:
                    if branch.get("type") == "number":
                        branch[theirs] = bound
        todo.extend(item.values())


def _filled(schema: dict[str, Any]) -> None:
    """Fields a model validator fills in are not required, or required only otherwise."""
    for spec in [schema, *_defs(schema).values()]:
        for field, when in _FILLED.get(spec.get("title", ""), ()):
            if field not in spec.get("required", []):
                continue
            spec["required"] = [r for r in spec["required"] if r != field]
            if when:
                cond = {"properties": {k: {"const": v} for k, v in when.items()},
                        "required": list(when)}
                spec.setdefault("allOf", []).append(
                    {"if": cond, "then": {}, "else": {"required": [field]}})


def schema_of(model: type[BaseModel], kind: str | None,
              keyed: Sequence[tuple[str, bool]] = (), *,
              header_required: bool = False) -> dict[str, Any]:
    """The JSON Schema of a YAML file that ``model`` validates.

    ``kind`` is the value of the file's ``kind:`` (None: the file has no header); ``keyed``
    lists the fields written as a mapping keyed by name (True: a list is accepted too). The
    simulator's ``Scenario`` goes through here (the core does not import the simulator).
    """
    schema = model.model_json_schema(mode="validation", schema_generator=_FileSchema)
    props = schema.setdefault("properties", {})
    for field, list_too in keyed:
        listed = props.get(field)
        if not listed:
            continue
        as_list = copy.deepcopy(listed)
        as_list.pop("default", None)
        items = _keyed_item(schema, as_list.get("items", {}), nullable=list_too)
        as_map: dict[str, Any] = {"type": "object", "additionalProperties": items}
        if "minItems" in as_list:
            as_map["minProperties"] = as_list["minItems"]
        if list_too:
            props[field] = {
                "description": f"{field} keyed by name (the name field may then be left out), "
                               "or a list",
                "anyOf": [as_map, as_list],
            }
        else:
            props[field] = {"description": f"{field} keyed by name", **as_map}
    _closed_branches(schema)
    _quantity_bounds(schema)
    _filled(schema)
    if kind is not None:
        props["apiVersion"] = {"const": "placer/v1"}
        props["kind"] = {"const": kind}
        if header_required:
            schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind"})
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def json_schema(kind: str) -> dict[str, Any]:
    """JSON Schema for ``kind`` (pipeline, inventory, policy or plan). KeyError if unknown.

    ``scenario`` is the simulator's: build it with :func:`schema_of` and
    ``placer.sim.scenario.Scenario`` (as ``placer schema scenario`` does).
    """
    kind = kind.lower().removesuffix("set")
    model = _model(kind)
    return schema_of(model, _HEADER.get(kind), _KEYED.get(kind, ()),
                     header_required=kind == "policy")
