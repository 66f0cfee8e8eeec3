"""JSON Schemas of the YAML file kinds, so editors can validate and complete them.

The models hold jobs, datasets and sites as lists (declaration order is explicit in Python),
while the YAML form keys them by name. The schema describes what users write: both forms.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

KEYED = {"pipeline": ("jobs", "datasets"), "inventory": ("sites",), "policy": (), "plan": ()}


def _model(kind: str) -> type[BaseModel]:
    from placer.models import Inventory, Pipeline, Plan
    from placer.policy import PolicySet

    models: dict[str, type[BaseModel]] = {
        "pipeline": Pipeline, "inventory": Inventory, "policy": PolicySet, "plan": Plan,
    }
    return models[kind]


def _keyed_item(schema: dict[str, Any], items: dict[str, Any]) -> dict[str, Any]:
    """The item schema for the keyed form: the same, but ``name`` may be left out."""
    ref = items.get("$ref", "")
    if not ref.startswith("#/$defs/"):
        return items
    name = ref.removeprefix("#/$defs/")
    spec = copy.deepcopy(schema["$defs"][name])
    spec["required"] = [r for r in spec.get("required", []) if r != "name"]
    schema["$defs"][f"{name}ByName"] = spec
    return {"$ref": f"#/$defs/{name}ByName"}


def json_schema(kind: str) -> dict[str, Any]:
    """JSON Schema for ``kind`` (pipeline, inventory, policy or plan). KeyError if unknown."""
    kind = kind.lower().removesuffix("set")
    model = _model(kind)
    schema = model.model_json_schema(mode="validation")
    props = schema.setdefault("properties", {})
    for field in KEYED[kind]:
        listed = props.get(field)
        if not listed:
            continue
        as_list = copy.deepcopy(listed)
        as_list.pop("default", None)
        items = _keyed_item(schema, as_list.get("items", {}))
        props[field] = {
            "description": f"{field} keyed by name (the name field may then be left out), "
                           "or a list",
            "anyOf": [{"type": "object", "additionalProperties": items}, as_list],
        }
    if kind != "plan":
        props["apiVersion"] = {"const": "placer/v1"}
        props["kind"] = {"const": {"pipeline": "Pipeline", "inventory": "Inventory",
                                   "policy": "PolicySet"}[kind]}
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
