"""The JSON Schema of the spec format, generated from the pydantic models, for editors and CI."""

from __future__ import annotations

from typing import Any

from netspec.fields import SpecModel, field_descriptions
from netspec.spec import FORMAT_VERSION, Spec

SCHEMA_ID = f"urn:netspec:spec-format:{FORMAT_VERSION}"

# An example for every key that has no default to show; keys with a default show their default.
_EXAMPLES: dict[str, Any] = {
    "netspec": FORMAT_VERSION,
    "classes": ["red rose", "white lotus"],
    "input": {"image": {"width": 16, "height": 16, "color": "rgb"}},
    "layers": [{"name": "hidden", "type": "dense", "neurons": 4, "activation": "relu"}],
    "weights_file": "trained.npz",
    "training": {"optimizer": "adam", "epochs": 20},
    "image": {"width": 16, "height": 16, "color": "rgb", "scale": [0.0, 1.0]},
    "features": 64,
    "width": 16,
    "height": 16,
    "mean": [0.485, 0.456, 0.406],
    "std": [0.229, 0.224, 0.225],
    "name": "hidden1",
    "neurons": 4,
    "filters": 16,
    "kernel": 3,
    "size": 2,
    "stride": 2,
    "rate": 0.25,
    "alpha": 0.1,
    "seed": 7,
    "file": "hidden1.npy",
    "key": "hidden1.weights",
    "learning_rate": 0.001,
    "patience": 5,
    "init": "he_uniform",
    "weights": "he_uniform",
    "dilation": 1,
    "scale": "ones",
    "shift": "zeros",
    "var": "ones",
}


def json_schema() -> dict[str, Any]:
    """The schema of spec format version 1, with a description and examples for every key."""
    schema = Spec.model_json_schema()
    _add_descriptions(schema)
    _add_examples(schema)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
        "title": f"netspec spec, format version {FORMAT_VERSION}",
    }


def _add_descriptions(schema: dict[str, Any]) -> None:
    """Each key's description, read from the docstring under its field (see fields.field_descriptions)."""
    models = {cls.__name__: cls for cls in _spec_models(SpecModel)}
    for name, node in [(Spec.__name__, schema), *schema.get("$defs", {}).items()]:
        model = models.get(name)
        descriptions = field_descriptions(model) if model else {}
        for key, prop in (node.get("properties") or {}).items():
            if key in descriptions and "description" not in prop:
                prop["description"] = descriptions[key]
                # pydantic writes a key's properties in sorted order: the description takes its place among them.
                ordered = dict(sorted(prop.items()))
                prop.clear()
                prop.update(ordered)


def _spec_models(base: type) -> list[type]:
    return [cls for sub in base.__subclasses__() for cls in (sub, *_spec_models(sub))]


def _add_examples(node: Any) -> None:
    if isinstance(node, dict):
        for key, prop in (node.get("properties") or {}).items():
            if "examples" not in prop:
                example = prop["default"] if "default" in prop and prop["default"] is not None else _EXAMPLES.get(key)
                if example is not None:
                    prop["examples"] = [example]
        for value in node.values():
            _add_examples(value)
    elif isinstance(node, list):
        for value in node:
            _add_examples(value)
