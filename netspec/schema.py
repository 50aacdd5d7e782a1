"""The JSON Schema of the spec format, generated from the pydantic models, for editors and CI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from netspec.blocks import USE_KEYS
from netspec.fields import SpecModel, field_descriptions
from netspec.inputs import ImageInput
from netspec.layers import KINDS
from netspec.layers.common import ALPHA_DEFAULTS, NAME_PATTERN, NAME_RULE
from netspec.spec import FORMAT_VERSION, Spec

SCHEMA_ID = f"urn:netspec:spec-format:{FORMAT_VERSION}"

SCHEMA_FILE_NAME = f"netspec-v{FORMAT_VERSION}.schema.json"
"""The schema's file name, in a source checkout's schema/ folder and wherever `netspec init` writes it."""

MODELINE = "# yaml-language-server: $schema="
"""A spec's first line that names its schema to editors (the YAML language server reads it)."""


def committed_schema() -> Path | None:
    """The schema file of the source checkout this netspec runs from, if it runs from one."""
    path = Path(__file__).resolve().parent.parent / "schema" / SCHEMA_FILE_NAME
    return path if path.is_file() else None


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
    "resize": 256,
    "crop": 224,
    "mean": [0.485, 0.456, 0.406],
    "std": [0.229, 0.224, 0.225],
    "name": "hidden1",
    "inputs": ["block1_bn2", "stem_pool"],
    "neurons": 4,
    "filters": 16,
    "kernel": 3,
    "size": 2,
    "stride": 2,
    "rate": 0.25,
    "alpha": 0.1,
    "activation": "relu",  # the activation layer's, which has no default
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
    "blocks": {
        "basic": {
            "params": {"filters": None, "stride": 1},
            "layers": [
                {"name": "conv1", "type": "conv2d", "filters": "$filters", "kernel": 3, "stride": "$stride"},
                {"name": "bn1", "type": "batchnorm", "activation": "relu"},
                {"name": "add", "type": "add", "inputs": ["bn1", "input"]},
            ],
        }
    },
    "block": "basic",
    "repeat": 2,
    "start": 0,
    "first": {"stride": 2},
}


def json_schema() -> dict[str, Any]:
    """The schema of spec format version 1, with a description and examples for every key."""
    schema = Spec.model_json_schema()
    _add_descriptions(schema)
    _agree_with_validate(schema)
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


def _agree_with_validate(schema: dict[str, Any]) -> None:
    """Say in the schema what `netspec validate` refuses and pydantic's schema leaves out, where JSON Schema can.

    Editors (the YAML language server) then flag these mistakes at the value concerned. What JSON
    Schema cannot say (a rule across layers, array shapes, weight files) stays with `netspec validate`.
    The `errorMessage` keywords are the language server's: other validators ignore them.
    """
    defs, props = schema["$defs"], schema["properties"]
    props["netspec"]["const"] = FORMAT_VERSION
    props["netspec"]["errorMessage"] = (
        f"this netspec reads format version {FORMAT_VERSION}: write 'netspec: {FORMAT_VERSION}'"
    )
    listed = next(form for form in props["classes"]["oneOf"] if form.get("type") == "array")
    listed["uniqueItems"] = True
    props["classes"]["examples"] = [_EXAMPLES["classes"], {"file": "imagenet-classes.txt"}]
    defs["ClassesFile"]["properties"]["file"]["examples"] = ["imagenet-classes.txt"]
    props["layers"]["items"] = _layer_or_use(defs)
    for kind in KINDS.values():
        _require_type(defs[kind.model.__name__])
        _alpha_needs_its_activation(defs[kind.model.__name__])
    _exactly_one_input(defs["Input"])
    _one_value_per_channel(defs["ImageInput"])
    _no_idle_training_options(defs["Training"])
    _names_first(schema)


def _layer_or_use(defs: dict[str, Any]) -> dict[str, Any]:
    """A layer item: a use of a block when it has `block`, else a layer chosen by its `type`."""
    return {"if": {"type": "object", "required": ["block"]}, "then": _use(), "else": _layer_by_type(defs)}


def _use() -> dict[str, Any]:
    """A use of a block: its own keys; any other key is one of the block's parameters (netspec checks which)."""
    forms = {
        "name": {"type": "string", "pattern": NAME_PATTERN},  # a layer name's beginning (netspec.blocks)
        "block": {"type": "string"},
        "repeat": {"type": "integer", "minimum": 1},
        "start": {"type": "integer", "minimum": 0},
        "first": {"type": "object"},
        "inputs": {
            "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 1}]
        },
    }
    return {
        "type": "object",
        "description": "A use of a block: its layers, named <name>.<layer>, take this item's place.",
        "properties": {key: {**form, "description": USE_KEYS[key]} for key, form in forms.items()},
        "required": ["name", "block"],
    }


def _layer_by_type(defs: dict[str, Any]) -> dict[str, Any]:
    """A layer's schema chosen by its `type`, as the validator chooses its model.

    A plain `oneOf` of the layer schemas leaves editors to guess which layer was meant: `type: Dense`
    drew "Missing property 'neurons'" and a layer without a type drew nothing. With `type` required
    and one `if`/`then` per value, an unknown type is reported as such, with the allowed ones.
    """
    kinds = list(KINDS)
    return {
        "type": "object",
        "properties": {
            "type": {
                "description": "Layer type; it decides which other keys the layer takes.",
                "enum": kinds,
                "examples": [kinds[0]],
            }
        },
        "required": ["type"],
        "allOf": [
            {
                "if": {"properties": {"type": {"const": kind}}, "required": ["type"]},
                "then": {"$ref": f"#/$defs/{KINDS[kind].model.__name__}"},
            }
            for kind in kinds
        ],
    }


def _require_type(layer: dict[str, Any]) -> None:
    # The model's default `type` serves layers built in code; in a spec file the type is required.
    kind = layer["properties"]["type"]
    kind.pop("default", None)
    kind["examples"] = [kind["const"]]
    layer["required"] = ["type", *layer.get("required", [])]
    name = next(form for form in layer["properties"]["name"]["anyOf"] if form.get("type") == "string")
    names = next(form["oneOf"] for form in layer["properties"]["inputs"]["anyOf"] if "oneOf" in form)
    for one in (name, *(form.get("items", form) for form in names)):
        one["pattern"] = NAME_PATTERN
        one["patternErrorMessage"] = NAME_RULE


def _alpha_needs_its_activation(layer: dict[str, Any]) -> None:
    if "alpha" in layer["properties"]:
        _forbid_when(
            layer,
            "alpha",
            {
                "required": ["alpha"],
                "properties": {"alpha": {"type": "number"}, "activation": {"not": {"enum": list(ALPHA_DEFAULTS)}}},
            },
            "only leaky_relu and elu take alpha; remove alpha or use activation: leaky_relu or elu",
        )


def _no_idle_training_options(training: dict[str, Any]) -> None:
    _forbid_when(
        training,
        "momentum",
        {"required": ["momentum"], "properties": {"optimizer": {"not": {"const": "sgd"}}}},
        "only sgd takes momentum; remove momentum or use optimizer: sgd",
    )
    _forbid_when(
        training,
        "patience",
        {
            "required": ["patience", "val_split"],
            "properties": {"patience": {"type": "integer"}, "val_split": {"const": 0}},
        },
        "patience counts epochs without a better validation accuracy; it needs val_split above 0",
    )


def _forbid_when(node: dict[str, Any], key: str, condition: dict[str, Any], message: str) -> None:
    """`key` may not be given when `condition` holds; editors say `message` at the key."""
    rule = {"if": condition, "then": {"properties": {key: False}, "errorMessage": message}}
    node.setdefault("allOf", []).append(rule)


def _exactly_one_input(node: dict[str, Any]) -> None:
    # `image:` or `features:` written with no value is refused too, so neither form takes null.
    for prop in node["properties"].values():
        forms = [form for form in prop.pop("anyOf", []) if form != {"type": "null"}]
        if len(forms) == 1:
            prop.update(forms[0])
        elif forms:
            prop["anyOf"] = forms
        prop.pop("default", None)
    node["minProperties"] = node["maxProperties"] = 1


def _one_value_per_channel(image: dict[str, Any]) -> None:
    counts = {color: ImageInput(width=1, height=1, color=color).channels for color in ("rgb", "grayscale")}
    keys = [key for key in ("mean", "std") if key in image["properties"]]

    def sized(count: int) -> dict[str, Any]:
        return {"properties": {key: {"minItems": count, "maxItems": count} for key in keys}}

    image.setdefault("allOf", []).append(
        {
            "if": {"properties": {"color": {"const": "grayscale"}}, "required": ["color"]},
            "then": sized(counts["grayscale"]),
            "else": sized(counts["rgb"]),
        }
    )


def _names_first(node: Any) -> None:
    """In a choice of value forms, the initializer names first.

    Editors report a value that fits no form with the first form's complaint: with the names
    first, `he_unifrom` draws the list of names, not "Incorrect type. Expected number | array".
    """
    if isinstance(node, dict):
        forms = node.get("oneOf")
        if isinstance(forms, list):
            node["oneOf"] = sorted(forms, key=lambda form: "enum" not in form)
        for value in node.values():
            _names_first(value)
    elif isinstance(node, list):
        for value in node:
            _names_first(value)


def _spec_models(base: type) -> list[type]:
    return [cls for sub in base.__subclasses__() for cls in (sub, *_spec_models(sub))]


def _add_examples(node: Any) -> None:
    if isinstance(node, dict):
        for key, prop in (node.get("properties") or {}).items():
            if isinstance(prop, dict) and "examples" not in prop:
                example = prop["default"] if "default" in prop and prop["default"] is not None else _EXAMPLES.get(key)
                if example is not None:
                    prop["examples"] = [example]
        for value in node.values():
            _add_examples(value)
    elif isinstance(node, list):
        for value in node:
            _add_examples(value)
