"""The JSON Schema: generated from the models, committed, and in agreement with the validator.

"In agreement" is checked with a real validator (jsonschema) against `netspec.check`, spec by spec:
every spec file in the repository and a table of one-change variants must get the same verdict
from both, except the few listed with the reason JSON Schema cannot state the rule.
"""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

import netspec
from netspec.cli import main
from netspec.cli.schema import schema_text
from netspec.fields import Initializer, InitializerName
from netspec.schema import json_schema

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "schema" / "netspec-v1.schema.json"
SPECS = sorted(ROOT.glob("specs/*.yaml")) + [ROOT / "examples" / "rose-vs-lotus.yaml"]
BROKEN = sorted((ROOT / "examples" / "broken").glob("*.yaml"))
SPEC_FILES = sorted(
    [*ROOT.glob("specs/*.yaml"), *ROOT.glob("examples/**/*.yaml"), *ROOT.glob("fuzz/corpus/specs/*.yaml")]
)


def test_the_committed_schema_is_the_generated_one():
    assert COMMITTED.read_text() == schema_text() + "\n", (
        "regenerate it: netspec schema > schema/netspec-v1.schema.json"
    )
    assert CliRunner().invoke(main, ["schema"]).output == schema_text() + "\n"


def test_every_key_has_a_description_and_an_example():
    missing = []

    def walk(node, path):
        if isinstance(node, dict):
            for key, prop in (node.get("properties") or {}).items():
                if not prop.get("description") or not prop.get("examples"):
                    missing.append(f"{path}.{key}")
            for key, value in node.items():
                if key not in ("if", "then", "else"):  # conditions between keys, not keys to offer
                    walk(value, f"{path}/{key}")
        elif isinstance(node, list):
            for value in node:
                walk(value, path)

    walk(json_schema(), "")
    assert missing == []


@pytest.mark.parametrize("spec", SPECS, ids=[p.name for p in SPECS])
def test_shipped_specs_match_the_schema_and_point_editors_at_it(spec):
    text = spec.read_text()
    assert text.splitlines()[0] == f"# yaml-language-server: $schema={'../schema/netspec-v1.schema.json'}"
    jsonschema.validate(yaml.safe_load(text), json_schema())


# Spec files that netspec refuses and JSON Schema cannot: each for a reason JSON Schema has no way to say.
FILE_EXCEPTIONS = {
    "fuzz/corpus/specs/npz.yaml": "its weights_file is not beside it (NS202): JSON Schema reads no files",
    "fuzz/corpus/specs/rose-vs-lotus.yaml": "its weights_file is not beside it (NS202): JSON Schema reads no files",
    "fuzz/corpus/specs/small.yaml": "its {file: w.npy} is not beside it (NS202): JSON Schema reads no files",
}


def _verdicts(path: Path) -> tuple[bool, bool]:
    """(netspec finds it valid, JSON Schema finds it valid)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return not netspec.check(path), jsonschema.Draft202012Validator(json_schema()).is_valid(data)


def test_the_spec_files_cover_valid_and_broken_ones():
    assert len(SPECS) == 6 and len(BROKEN) == 14
    assert {str(path.relative_to(ROOT)) for path in SPEC_FILES} >= set(FILE_EXCEPTIONS)


@pytest.mark.parametrize("spec", SPEC_FILES, ids=[str(p.relative_to(ROOT)) for p in SPEC_FILES])
def test_the_schema_and_netspec_agree_on_every_spec_file(spec):
    by_netspec, by_schema = _verdicts(spec)
    if str(spec.relative_to(ROOT)) in FILE_EXCEPTIONS:
        assert (by_netspec, by_schema) == (False, True)
    else:
        assert by_netspec == by_schema
        assert spec not in BROKEN or not by_netspec
        assert spec not in SPECS or by_netspec


BASE = """\
netspec: 1
classes: [a, b]
input:
  image: {width: 4, height: 4, color: grayscale}
layers:
  - {name: hidden, type: dense, neurons: 3, activation: relu}
  - {name: output, type: dense, neurons: 2, activation: softmax}
"""
TRAINING = "training: {optimizer: sgd, momentum: 0.5, patience: 2, val_split: 0.2}\n"

# One change to BASE each: (id, old text, new text). Both sides must agree on each.
VARIANTS = [
    ("base", "", ""),
    ("version 2", "netspec: 1", "netspec: 2"),
    ("version 1.5", "netspec: 1", "netspec: 1.5"),
    ("dotted layer name", "name: hidden", "name: hidden.1"),
    ("empty layer name", "name: hidden", "name: ''"),
    ("null layer name", "name: hidden", "name: null"),
    ("layer without type", "type: dense, neurons: 3", "neurons: 3"),
    ("layer of only a name", "type: dense, neurons: 3, activation: relu", ""),
    ("layer type Dense", "type: dense, neurons: 3", "type: Dense, neurons: 3"),
    ("layer written as text", "{name: hidden, type: dense, neurons: 3, activation: relu}", "dense"),
    ("dense key on a flatten", "type: dense, neurons: 3, activation: relu", "type: flatten, neurons: 3"),
    ("empty input", "  image: {width: 4, height: 4, color: grayscale}", "  {}"),
    ("input with null image", "  image: {width: 4, height: 4, color: grayscale}", "  image: null"),
    (
        "input with both forms",
        "  image: {width: 4, height: 4, color: grayscale}",
        "  image: {width: 4, height: 4}\n  features: 3",
    ),
    ("features input", "  image: {width: 4, height: 4, color: grayscale}", "  features: 3"),
    ("initializer misspelt", "activation: relu}", "activation: relu, weights: he_unifrom}"),
    ("initializer mapping", "activation: relu}", "activation: relu, weights: {init: normal, std: 0.1}}"),
    ("alpha on relu", "activation: relu}", "activation: relu, alpha: 0.1}"),
    ("alpha null on relu", "activation: relu}", "activation: relu, alpha: null}"),
    ("alpha on leaky_relu", "activation: relu}", "activation: leaky_relu, alpha: 0.1}"),
    ("alpha, default activation", "activation: relu}", "alpha: 0.1}"),
    ("alpha on elu", "activation: relu}", "activation: elu, alpha: 0.5}"),
    ("alpha on relu6", "activation: relu}", "activation: relu6, alpha: 0.1}"),
    ("gelu", "activation: relu}", "activation: gelu}"),
    ("activation layer", "  - {name: output", "  - {type: activation, activation: hard_swish}\n  - {name: output"),
    ("activation layer without activation", "  - {name: output", "  - {type: activation}\n  - {name: output"),
    (
        "activation layer with neurons",
        "  - {name: output",
        "  - {type: activation, activation: silu, neurons: 3}\n  - {name: output",
    ),
    (
        "activation layer, alpha on elu",
        "  - {name: output",
        "  - {type: activation, activation: elu, alpha: 2}\n  - {name: output",
    ),
    (
        "activation layer, alpha on relu",
        "  - {name: output",
        "  - {type: activation, activation: relu, alpha: 2}\n  - {name: output",
    ),
    ("batchnorm with activation", "  - {name: output", "  - {type: batchnorm, activation: relu6}\n  - {name: output"),
    (
        "batchnorm, alpha on leaky_relu",
        "  - {name: output",
        "  - {type: batchnorm, activation: leaky_relu, alpha: 0.2}\n  - {name: output",
    ),
    (
        "batchnorm, alpha, default activation",
        "  - {name: output",
        "  - {type: batchnorm, alpha: 0.2}\n  - {name: output",
    ),
    ("class twice", "classes: [a, b]", "classes: [a, a]"),
    ("grayscale mean of 1", "color: grayscale}", "color: grayscale, mean: [0.5], std: [0.2]}"),
    ("grayscale mean of 3", "color: grayscale}", "color: grayscale, mean: [0.5, 0.5, 0.5]}"),
    ("rgb std of 1", "color: grayscale}", "color: rgb, std: [0.2]}"),
    ("rgb (default) mean of 3", "color: grayscale}", "mean: [0.5, 0.4, 0.3]}"),
    ("training", "", TRAINING),
    ("momentum with adam", "", TRAINING.replace("sgd", "adam")),
    ("momentum, default optimizer", "", "training: {momentum: 0.5}\n"),
    ("patience without validation", "", TRAINING.replace("0.2", "0")),
    ("patience, default val_split", "", "training: {patience: 2}\n"),
    ("inputs as a name", "type: dense, neurons: 2, activation: softmax", "type: dense, neurons: 2, inputs: hidden"),
    ("inputs as a list", "type: dense, neurons: 2, activation: softmax", "type: dense, neurons: 2, inputs: [hidden]"),
    ("inputs as a number", "type: dense, neurons: 2, activation: softmax", "type: dense, neurons: 2, inputs: 3"),
    ("inputs as an empty list", "type: dense, neurons: 2, activation: softmax", "type: dense, neurons: 2, inputs: []"),
    (
        "inputs with an empty part in a dotted name",
        "type: dense, neurons: 2, activation: softmax",
        "type: dense, neurons: 2, inputs: [a..b]",
    ),
    # The rules below JSON Schema cannot state; they are EXCEPTIONS.
    ("output size differs from the classes", "neurons: 2", "neurons: 3"),
    ("softmax before the last layer", "activation: relu", "activation: softmax"),
    ("layer name twice", "name: output", "name: hidden"),
    ("the same label as number and text", "classes: [a, b]", "classes: [1, '1']"),
    ("scale of two equal values", "color: grayscale}", "color: grayscale, scale: [1, 1]}"),
    (
        "uniform with high below low",
        "activation: relu}",
        "activation: relu, weights: {init: uniform, low: 1, high: 0}}",
    ),
    ("neurons written 3.0", "neurons: 3", "neurons: 3.0"),
    ("weights of the wrong shape", "activation: relu}", "activation: relu, bias: [1, 2]}"),
    ("conv2d on a vector", "  image: {width: 4, height: 4, color: grayscale}", "  features: 16"),
    ("weights file that is not there", "activation: relu}", "activation: relu, weights: {file: gone.npy}}"),
    (
        "inputs naming no layer",
        "type: dense, neurons: 2, activation: softmax",
        "type: dense, neurons: 2, inputs: hiden",
    ),
    (
        "a layer no layer reads",
        "type: dense, neurons: 2, activation: softmax",
        "type: dense, neurons: 2, inputs: input",
    ),
]

EXCEPTIONS = {
    "output size differs from the classes": "compares a layer's neurons with the length of classes",
    "softmax before the last layer": "JSON Schema cannot single out an array's last item",
    "layer name twice": "uniqueItems compares whole layers, not one key of each",
    "the same label as number and text": "1 and '1' differ in JSON; netspec reads both as the label '1'",
    "scale of two equal values": "compares two items of one array",
    "uniform with high below low": "compares two keys' values",
    "neurons written 3.0": "JSON's data model has no 3.0 apart from 3, so 'integer' takes it; netspec's strict mode does not",
    "weights of the wrong shape": "a shape follows from the layers before (the builder's shape chain)",
    "conv2d on a vector": "a shape follows from the layers before (the builder's shape chain)",
    "weights file that is not there": "JSON Schema reads no files",
    "inputs naming no layer": "compares a value with the names of other layers",
    "a layer no layer reads": "compares each layer's name with every later layer's inputs",
}


def _variant(case: tuple[str, str, str]) -> str:
    _, old, new = case
    if case[0] == "conv2d on a vector":
        return BASE.replace(old, new).replace("type: dense, neurons: 3", "type: conv2d, filters: 2, kernel: 3")
    if old == "":
        return BASE + new
    assert old in BASE
    return BASE.replace(old, new, 1)


@pytest.mark.parametrize("case", VARIANTS, ids=[case[0] for case in VARIANTS])
def test_the_schema_and_netspec_agree_on_one_change_variants(case, write_spec):
    by_netspec, by_schema = _verdicts(write_spec(_variant(case)))
    if case[0] in EXCEPTIONS:
        assert (by_netspec, by_schema) == (False, True), "JSON Schema learned this rule: drop it from EXCEPTIONS"
    else:
        assert by_netspec == by_schema


def test_the_exceptions_are_variants():
    assert set(EXCEPTIONS) <= {case[0] for case in VARIANTS}


def test_layers_are_chosen_by_type_as_netspec_chooses_them():
    """A wrong type is reported as a wrong type, not as the keys some other layer type would miss."""
    validator = jsonschema.Draft202012Validator(json_schema())
    data = yaml.safe_load(_variant(("", "type: dense, neurons: 3", "type: Dense, neurons: 3")))
    assert [(list(e.absolute_path), e.message) for e in validator.iter_errors(data)] == [
        (
            ["layers", 0, "type"],
            "'Dense' is not one of ['dense', 'conv2d', 'maxpool2d', 'avgpool2d', 'global_avgpool', 'flatten', 'dropout', 'batchnorm', 'lrn', 'channel_shuffle', 'slice', 'activation', 'add', 'concat', 'multiply']",
        )
    ]
    data = yaml.safe_load(_variant(("", "type: dense, neurons: 3", "neurons: 3")))
    assert [(list(e.absolute_path), e.message) for e in validator.iter_errors(data)] == [
        (["layers", 0], "'type' is a required property")
    ]


def test_initializer_names_match_the_models():
    models = get_args(get_args(Initializer)[0])
    assert sorted(get_args(model.model_fields["init"].annotation)[0] for model in models) == sorted(
        get_args(InitializerName)
    )
