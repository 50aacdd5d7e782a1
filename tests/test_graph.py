"""Networks as graphs: `inputs`, the rules a graph keeps (each a located error), and what each layer reads."""

from __future__ import annotations

import jsonschema
import pytest
import yaml

import netspec
from netspec.builder import plan
from netspec.layers import KINDS
from netspec.layers.common import LayerBase
from netspec.schema import json_schema

from conftest import where

HEAD = """\
netspec: 1
classes: [a, b]
input: {features: 4}
layers:
"""

RESIDUAL_MLP = (
    HEAD
    + """\
  - {name: h1, type: dense, neurons: 4, activation: relu}
  - {name: h2, type: dense, neurons: 4}
  - {name: sum, type: add, inputs: [h1, h2], activation: relu}
  - {name: out, type: dense, neurons: 2, activation: softmax}
"""
)


def test_every_layer_kind_takes_inputs_from_the_shared_base():
    # A kind whose model does not derive from LayerBase would have no `inputs` in specs or the schema.
    assert all(issubclass(kind.model, LayerBase) for kind in KINDS.values())
    assert all("inputs" in kind.model.model_fields for kind in KINDS.values())


def test_a_chain_reads_the_layer_before_each_layer_as_it_always_did(write_spec):
    network = netspec.load(write_spec(HEAD + "  - {type: dense, neurons: 3}\n  - {type: dense, neurons: 2}\n"))
    assert [layer.inputs for layer in network.layers] == [["input"], ["dense_0"]]


def test_inputs_name_layers_above_and_the_input(write_spec):
    text = RESIDUAL_MLP.replace(
        "{name: h2, type: dense, neurons: 4}", "{name: h2, type: dense, neurons: 4, inputs: input}"
    )
    nodes = plan(netspec.read_spec(write_spec(text))[0])
    assert [node.inputs for node in nodes] == [["input"], ["input"], ["h1", "h2"], ["sum"]]
    assert nodes[2].input_shapes == [(4,), (4,)] and nodes[2].output_shape == (4,)


def test_the_schema_takes_inputs_as_a_name_or_a_list_of_names():
    for inputs in ("h1", ["h1", "h2"], "input"):
        data = yaml.safe_load(RESIDUAL_MLP)
        data["layers"][2]["inputs"] = inputs if isinstance(inputs, list) else [inputs, "h2"]
        data["layers"][1]["inputs"] = inputs if isinstance(inputs, str) else "input"
        jsonschema.validate(data, json_schema())
    for bad in (3, [], ["a..b"], {"a": 1}):
        data = yaml.safe_load(RESIDUAL_MLP)
        data["layers"][1]["inputs"] = bad
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(data, json_schema())


# Every rule is a located error: the file, line and column of the value at fault, a stable code, the fix.


def test_an_input_that_names_no_layer_says_which_was_meant(problems):
    text = RESIDUAL_MLP.replace("inputs: [h1, h2]", "inputs: [h1, h_2]")
    assert problems(text) == [
        f"{where(text, 'h_2]', 'h_2')}: NS127 layers[2].inputs[1]: layer 'sum' reads 'h_2', which is not the name of any layer; "
        "did you mean 'h2'?"
    ]


def test_an_input_like_no_name_lists_what_may_be_read(problems):
    text = RESIDUAL_MLP.replace("inputs: [h1, h2]", "inputs: [h1, shortcut]")
    assert problems(text) == [
        f"{where(text, 'shortcut]', 'shortcut')}: NS127 layers[2].inputs[1]: layer 'sum' reads 'shortcut', which is not the name of any "
        "layer; name a layer listed above it, or input (the network's input)"
    ]


def test_an_input_listed_after_its_reader_says_to_move_it(problems):
    text = (
        HEAD
        + """\
  - {name: h1, type: dense, neurons: 4, activation: relu}
  - {name: sum, type: add, inputs: [h1, h2], activation: relu}
  - {name: h2, type: dense, neurons: 4, inputs: h1}
  - {name: out, type: dense, neurons: 2, inputs: sum}
"""
    )
    assert problems(text) == [
        f"{where(text, 'h2], activation', 'h2')}: NS128 layers[1].inputs[1]: layer 'sum' reads 'h2', which is listed after it; "
        "list 'h2' before 'sum'"
    ]


def test_a_cycle_and_a_layer_reading_itself_are_said_as_such(problems):
    text = (
        HEAD
        + """\
  - name: a
    type: dense
    neurons: 4
    inputs: b
  - {name: b, type: dense, neurons: 4}
  - {name: c, type: dense, neurons: 4, inputs: c}
  - {name: out, type: dense, neurons: 2, inputs: [b]}
"""
    )
    assert problems(text) == [
        f"{where(text, 'inputs: b', 'b')}: NS128 layers[0].inputs: layer 'a' reads 'b', which reads 'a' in turn: a cycle; a layer "
        "reads only layers listed above it, so one of the two must read something else",
        f"{where(text, 'inputs: c', 'c')}: NS128 layers[2].inputs: layer 'c' reads itself; a layer reads only layers listed above it",
    ]


def test_a_layer_nobody_reads_is_an_error_but_the_output_is_not(problems):
    text = RESIDUAL_MLP.replace(
        "  - {name: sum", "  - {name: side, type: dense, neurons: 3, inputs: input}\n  - {name: sum"
    )
    assert problems(text) == [
        f"{where(text, '{name: side', '{')}: NS129 layers[2]: no layer reads the output of layer 'side'; only the last layer (the "
        "output) may be left unread: name 'side' in the inputs of a layer below it, or remove it"
    ]
    assert problems(RESIDUAL_MLP) == []


def test_a_merge_needs_two_inputs_and_a_one_input_layer_takes_one(problems):
    text = (
        HEAD
        + """\
  - {name: h1, type: dense, neurons: 4, activation: relu}
  - {name: h2, type: dense, neurons: 4}
  - {name: sum, type: add}
  - {name: both, type: dense, neurons: 4, inputs: [h1, sum]}
  - {name: one, type: add, inputs: [both]}
  - {name: out, type: dense, neurons: 2}
"""
    )
    assert problems(text) == [
        f"{where(text, '{name: sum', '{')}: NS130 layers[2]: add layer 'sum' reads only the layer before it ('h2'), but add merges two "
        "or more inputs; list the layers it merges: inputs: [h2, ...]",
        f"{where(text, '[h1, sum]')}: NS130 layers[3].inputs: dense layer 'both' reads 2 inputs ('h1', 'sum'), but a dense "
        "layer reads one; merge them first with an add or concat layer, or name one",
        f"{where(text, '[both]')}: NS130 layers[4].inputs: add layer 'one' reads 1 input ('both'), but add merges two or "
        "more inputs; list the layers it merges: inputs: [both, ...]",
    ]


def test_shapes_that_cannot_be_added_name_both_inputs(problems):
    text = """\
netspec: 1
classes: [a, b]
input: {image: {width: 8, height: 8}}
layers:
  - {name: stem_pool, type: maxpool2d, size: 2}
  - {name: block1_conv, type: conv2d, filters: 6, kernel: 3, padding: same, inputs: input}
  - {name: block1_add, type: add, inputs: [block1_conv, stem_pool]}
  - {name: flat, type: flatten}
  - {name: out, type: dense, neurons: 2}
"""
    assert problems(text) == [
        f"{where(text, 'stem_pool]')}: NS126 layers[2].inputs[1]: layer block1_add: add cannot add (3, 4, 4) from 'stem_pool' "
        "to (6, 8, 8) from 'block1_conv'; it adds inputs of one shape: a conv2d with kernel 1 on one of them "
        "changes its channels, and with a stride its height and width"
    ]


def test_a_layer_called_input_cannot_be_told_from_the_network_input_when_inputs_name_it(problems):
    text = RESIDUAL_MLP.replace("{name: h1,", "{name: input,").replace("[h1, h2]", "[input, h2]")
    text = text.replace("{name: h2, type: dense, neurons: 4}", "{name: h2, type: dense, neurons: 4, inputs: input}")
    assert problems(text) == [
        f"{where(text, 'input, type')}: NS121 layers[0].name: layer name 'input' is also the name of the network's input, which "
        "layer 'h2' reads by `inputs: input`; give the layer another name"
    ]
    # Named so in a chain, where no one names the input, it stays a valid spec as before.
    assert problems(HEAD + "  - {name: input, type: dense, neurons: 4}\n  - {type: dense, neurons: 2}\n") == []


def test_inputs_that_are_not_names(problems):
    text = (
        HEAD
        + """\
  - {name: h1, type: dense, neurons: 4, inputs: 3}
  - {name: h2, type: dense, neurons: 4, inputs: []}
  - {name: out, type: dense, neurons: 2, inputs: [h1..x]}
"""
    )
    assert problems(text) == [
        f"{where(text, 'inputs: 3', '3')}: NS103 layers[0].inputs: must be a layer name or a list of layer names, got 3",
        f"{where(text, '[]')}: NS108 layers[1].inputs: must have at least 1 item, got 0",
        f"{where(text, 'h1..x')}: NS103 layers[2].inputs[0]: layer names are ASCII letters, digits, '_' and '-', "
        "in parts joined by dots (as layer1.0.conv1), got 'h1..x'",
    ]


IMAGE_HEAD = """\
netspec: 1
classes: [a, b]
input: {image: {width: 8, height: 8}}
layers:
"""


def test_concat_joins_channels_and_names_inputs_whose_height_and_width_differ(problems, write_spec):
    text = (
        IMAGE_HEAD
        + """\
  - {name: wide, type: conv2d, filters: 5, kernel: 3, padding: same}
  - {name: half, type: maxpool2d, size: 2, inputs: input}
  - {name: mixed, type: concat, inputs: [wide, half]}
  - {name: pool, type: global_avgpool}
  - {name: out, type: dense, neurons: 2}
"""
    )
    assert problems(text) == [
        f"{where(text, 'half]}', 'half')}: NS126 layers[2].inputs[1]: layer mixed: concat cannot join (3, 4, 4) "
        "from 'half' to (5, 8, 8) from 'wide': it joins channels, so height and width must agree; a pooling or a "
        "stride on one of them changes its size"
    ]
    fixed = text.replace("size: 2, inputs: input", "size: 3, stride: 1, padding: 1, inputs: input")
    nodes = plan(netspec.read_spec(write_spec(fixed))[0])
    assert nodes[2].output_shape == (8, 8, 8)


def test_concat_refuses_an_image_beside_a_vector(problems):
    text = (
        IMAGE_HEAD
        + """\
  - {name: means, type: global_avgpool}
  - {name: mixed, type: concat, inputs: [means, input]}
  - {name: out, type: dense, neurons: 2}
"""
    )
    assert problems(text) == [
        f"{where(text, 'input]}', 'input')}: NS126 layers[1].inputs[1]: layer mixed: concat cannot join (3, 8, 8) "
        "from the input to (3,) from 'means': an image and a vector; a flatten or global_avgpool makes the image "
        "a vector"
    ]


def test_multiply_takes_two_inputs_of_one_shape_or_one_value_per_channel(problems, write_spec):
    text = (
        IMAGE_HEAD
        + """\
  - {name: conv, type: conv2d, filters: 4, kernel: 3, padding: same}
  - {name: means, type: global_avgpool, inputs: input}
  - {name: gate, type: multiply, inputs: [conv, means]}
  - {name: pool, type: global_avgpool}
  - {name: out, type: dense, neurons: 2}
"""
    )
    assert problems(text) == [
        f"{where(text, 'means]}', 'means')}: NS126 layers[2].inputs[1]: layer gate: multiply cannot multiply "
        "(4, 8, 8) from 'conv' by (3,) from 'means'; it multiplies inputs of one shape or one value per channel, "
        "(4,) or (4, 1, 1)"
    ]
    three = text.replace("inputs: [conv, means]", "inputs: [conv, conv, conv]")
    assert problems(three) == [
        f"{where(three, '{name: means')}: NS129 layers[1]: no layer reads the output of layer 'means'; only the "
        "last layer (the output) may be left unread: name 'means' in the inputs of a layer below it, or remove it",
        f"{where(three, '[conv, conv, conv]')}: NS130 layers[2].inputs: multiply layer 'gate' reads 3 inputs "
        "('conv', 'conv', 'conv'), but multiply merges exactly two inputs; list the layers it merges: "
        "inputs: [conv, conv]",
    ]
    gated = text.replace("global_avgpool, inputs: input}", "global_avgpool}\n  - {type: dense, neurons: 4}")
    gated = gated.replace("inputs: [conv, means]", "inputs: [conv, dense_2]")
    nodes = plan(netspec.read_spec(write_spec(gated))[0])
    assert nodes[3].input_shapes == [(4, 8, 8), (4,)] and nodes[3].output_shape == (4, 8, 8)
