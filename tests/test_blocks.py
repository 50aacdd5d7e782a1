"""Blocks: a spec with blocks is the same network written flat, and every problem inside a block says both places."""

from __future__ import annotations

import json
import textwrap
import tracemalloc
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from references import mutate

import netspec
from netspec.blocks import MAX_DEPTH, Origin, Use
from netspec.cli import main
from netspec.loader import read_spec
from netspec.schema import json_schema

# A small ResNet: a stem, a stage of two basic blocks, a stage whose first block halves the picture
# (a 1×1 conv + batch norm on the shortcut, itself a block), then the classifier.
BLOCKS = """\
netspec: 1
name: tiny-resnet
classes: [a, b, c]
input:
  image: {width: 8, height: 8, color: grayscale}
seed: 3
blocks:
  basic:
    params: {filters: ~, stride: 1}
    layers:
      - {name: conv1, type: conv2d, filters: $filters, kernel: 3, stride: $stride, padding: 1, use_bias: false}
      - {name: bn1, type: batchnorm, activation: relu}
      - {name: conv2, type: conv2d, filters: $filters, kernel: [3, 3], padding: 1, use_bias: false}
      - {name: bn2, type: batchnorm}
      - {name: add, type: add, inputs: [bn2, input], activation: relu}
  basic_down:
    params: {filters: ~, stride: 2}
    layers:
      - {name: conv1, type: conv2d, filters: $filters, kernel: 3, stride: $stride, padding: 1, use_bias: false}
      - {name: bn1, type: batchnorm, activation: relu}
      - {name: conv2, type: conv2d, filters: $filters, kernel: 3, padding: 1, use_bias: false}
      - {name: bn2, type: batchnorm}
      - {name: downsample, block: conv_bn, inputs: input, filters: $filters, stride: $stride}
      - {name: add, type: add, inputs: [bn2, downsample], activation: relu}
  conv_bn:
    params: {filters: ~, stride: 1}
    layers:
      - {name: "0", type: conv2d, filters: $filters, kernel: 1, stride: $stride, use_bias: false}
      - {name: "1", type: batchnorm}
layers:
  - {name: conv1, type: conv2d, filters: 4, kernel: 3, padding: 1, use_bias: false}
  - {name: layer1, block: basic, repeat: 2, filters: 4}
  - {name: layer2, block: basic, repeat: 2, filters: 8, first: {block: basic_down, stride: 2}}
  - {name: pool, type: global_avgpool, inputs: layer2}
  - {name: fc, type: dense, neurons: 3, activation: softmax}
"""

# The same network written by hand, flat, with PyTorch's names.
FLAT = """\
netspec: 1
name: tiny-resnet
classes: [a, b, c]
input:
  image: {width: 8, height: 8, color: grayscale}
seed: 3
layers:
  - {name: conv1, type: conv2d, filters: 4, kernel: 3, padding: 1, use_bias: false}
  - {name: layer1.0.conv1, type: conv2d, filters: 4, kernel: 3, stride: 1, padding: 1, use_bias: false}
  - {name: layer1.0.bn1, type: batchnorm, activation: relu}
  - {name: layer1.0.conv2, type: conv2d, filters: 4, kernel: 3, padding: 1, use_bias: false}
  - {name: layer1.0.bn2, type: batchnorm}
  - {name: layer1.0.add, type: add, inputs: [layer1.0.bn2, conv1], activation: relu}
  - {name: layer1.1.conv1, type: conv2d, filters: 4, kernel: 3, stride: 1, padding: 1, use_bias: false}
  - {name: layer1.1.bn1, type: batchnorm, activation: relu}
  - {name: layer1.1.conv2, type: conv2d, filters: 4, kernel: 3, padding: 1, use_bias: false}
  - {name: layer1.1.bn2, type: batchnorm}
  - {name: layer1.1.add, type: add, inputs: [layer1.1.bn2, layer1.0.add], activation: relu}
  - {name: layer2.0.conv1, type: conv2d, filters: 8, kernel: 3, stride: 2, padding: 1, use_bias: false}
  - {name: layer2.0.bn1, type: batchnorm, activation: relu}
  - {name: layer2.0.conv2, type: conv2d, filters: 8, kernel: 3, padding: 1, use_bias: false}
  - {name: layer2.0.bn2, type: batchnorm}
  - {name: layer2.0.downsample.0, type: conv2d, filters: 8, kernel: 1, stride: 2, use_bias: false, inputs: layer1.1.add}
  - {name: layer2.0.downsample.1, type: batchnorm}
  - {name: layer2.0.add, type: add, inputs: [layer2.0.bn2, layer2.0.downsample.1], activation: relu}
  - {name: layer2.1.conv1, type: conv2d, filters: 8, kernel: 3, stride: 1, padding: 1, use_bias: false}
  - {name: layer2.1.bn1, type: batchnorm, activation: relu}
  - {name: layer2.1.conv2, type: conv2d, filters: 8, kernel: 3, padding: 1, use_bias: false}
  - {name: layer2.1.bn2, type: batchnorm}
  - {name: layer2.1.add, type: add, inputs: [layer2.1.bn2, layer2.0.add], activation: relu}
  - {name: pool, type: global_avgpool, inputs: layer2.1.add}
  - {name: fc, type: dense, neurons: 3, activation: softmax}
"""


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert "Traceback" not in result.output + result.stderr
    return result


def line_of(text: str, needle: str) -> int:
    """The 1-based line of the one occurrence of `needle` in `text`: tests state places by the text they wrote."""
    text = textwrap.dedent(text)
    assert text.count(needle) == 1, f"{needle!r} must occur once"
    return text.count("\n", 0, text.index(needle)) + 1


def at(text: str, needle: str, part: str | None = None) -> str:
    """'spec.yaml:LINE:COL' of `part` inside `needle`."""
    text = textwrap.dedent(text)
    assert text.count(needle) == 1, f"{needle!r} must occur once"
    offset = text.index(needle) + (needle.index(part) if part else 0)
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f"spec.yaml:{text.count(chr(10), 0, offset) + 1}:{column}"


@pytest.fixture
def both(tmp_path) -> tuple[Path, Path]:
    (tmp_path / "blocks").mkdir()
    (tmp_path / "flat").mkdir()
    blocks, flat = tmp_path / "blocks" / "spec.yaml", tmp_path / "flat" / "spec.yaml"
    blocks.write_text(BLOCKS)
    flat.write_text(FLAT)
    return blocks, flat


# Expansion ----------------------------------------------------------------------------------------------


def test_uses_expand_to_pytorch_names_in_order(both):
    spec, _ = read_spec(both[0])
    flat, _ = read_spec(both[1])
    assert [layer.name for layer in spec.layers] == [layer.name for layer in flat.layers]
    assert [layer.name for layer in spec.layers][1:6] == [
        "layer1.0.conv1",
        "layer1.0.bn1",
        "layer1.0.conv2",
        "layer1.0.bn2",
        "layer1.0.add",
    ]
    assert spec.model_dump(exclude={"blocks"}) == flat.model_dump(exclude={"blocks"})
    assert flat.origins is None


def test_each_layer_knows_the_uses_it_came_from(both):
    spec, _ = read_spec(both[0])
    origins = dict(zip([layer.name for layer in spec.layers], spec.origins))
    assert origins["conv1"] == Origin(("layers", 0))
    assert origins["layer1.1.conv2"] == Origin(
        ("blocks", "basic", "layers", 2),
        (Use(("layers", 1), "basic", "layer1.1", line_of(BLOCKS, "name: layer1,"), "layer1"),),
    )
    layer2 = line_of(BLOCKS, "name: layer2,")
    assert origins["layer2.0.downsample.1"] == Origin(
        ("blocks", "conv_bn", "layers", 1),
        (
            Use(("layers", 2), "basic_down", "layer2.0", layer2, "layer2"),
            Use(
                ("blocks", "basic_down", "layers", 4),
                "conv_bn",
                "layer2.0.downsample",
                line_of(BLOCKS, "downsample, block"),
                "downsample",
            ),
        ),
    )
    assert origins["pool"].uses == ()


def test_start_numbers_the_copies_and_a_use_without_repeat_is_named_once(write_spec):
    path = write_spec(
        """\
        netspec: 1
        classes: [a, b]
        input: {features: 4}
        blocks:
          mlp:
            params: {n: 8}
            layers:
              - {type: dense, neurons: $n, activation: relu}
              - {name: out, type: dense, neurons: $n}
        layers:
          - {type: dense, neurons: 4}
          - {name: features, block: mlp, repeat: 3, start: 4, n: 5, first: {n: 6}}
          - {name: head, block: mlp, n: 2}
        """
    )
    spec, _ = read_spec(path)
    assert [(layer.name, layer.neurons, layer.inputs) for layer in spec.layers] == [
        ("dense_0", 4, None),
        ("features.4.0", 6, None),  # an unnamed layer of a block is named by its place, as nn.Sequential does
        ("features.4.out", 6, None),
        ("features.5.0", 5, None),
        ("features.5.out", 5, None),
        ("features.6.0", 5, None),
        ("features.6.out", 5, None),
        ("head.0", 2, None),
        ("head.out", 2, None),
    ]


def test_a_use_reads_its_inputs_and_input_inside_the_block_is_what_the_block_reads(write_spec):
    path = write_spec(
        """\
        netspec: 1
        classes: [a, b]
        input: {features: 4}
        blocks:
          residual:
            layers:
              - {name: fc, type: dense, neurons: 4, activation: relu}
              - {name: sum, type: add, inputs: [fc, input]}
        layers:
          - {name: stem, type: dense, neurons: 4}
          - {name: other, type: dense, neurons: 4}
          - {name: r, block: residual, inputs: stem}
          - {name: join, type: add, inputs: [r, other]}
          - {name: out, type: dense, neurons: 2}
        """
    )
    spec, _ = read_spec(path)
    assert [(layer.name, layer.inputs) for layer in spec.layers] == [
        ("stem", None),
        ("other", None),
        ("r.fc", "stem"),
        ("r.sum", ["r.fc", "stem"]),
        ("join", ["r.sum", "other"]),
        ("out", None),
    ]


# The same network written flat ---------------------------------------------------------------------------


def test_validate_says_the_same_of_both(both):
    outputs = [invoke("validate", path) for path in both]
    assert [(r.exit_code, r.output) for r in outputs] == [(0, "1 spec checked, 0 invalid\n")] * 2


def test_both_build_the_same_network(both):
    blocked, flat = (netspec.load(path) for path in both)
    assert [layer.name for layer in blocked.layers] == [layer.name for layer in flat.layers]
    for one, other in zip(blocked.layers, flat.layers):
        assert one.params.keys() == other.params.keys()
        for key in one.params:  # initializers are seeded by the layer's name: the same names draw the same numbers
            np.testing.assert_array_equal(one.params[key], other.params[key])
    x = np.random.default_rng(0).random((5, 1, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(blocked.forward(x), flat.forward(x), rtol=0, atol=1e-7)


def test_both_export_the_same_onnx(both, tmp_path):
    pytest.importorskip("onnx")
    files = [tmp_path / "blocks.onnx", tmp_path / "flat.onnx"]
    for spec, out in zip(both, files):
        assert invoke("export", spec, "-o", out).exit_code == 0
    assert files[0].read_bytes() == files[1].read_bytes()


def test_both_train_to_the_same_weights_and_the_trained_spec_keeps_its_blocks(both, tmp_path):
    rng = np.random.default_rng(1)
    data = tmp_path / "data.npz"
    np.savez(data, x=rng.random((24, 1, 8, 8)).astype(np.float32), y=np.arange(24) % 3)
    outs = [path.parent / "trained.yaml" for path in both]
    for spec, out in zip(both, outs):
        result = invoke("train", spec, data, "-o", out, "--epochs", "1", "--batch-size", "8", "--quiet")
        assert result.exit_code == 0, result.output
    one, other = (np.load(out.with_suffix(".npz")) for out in outs)
    assert sorted(one.files) == sorted(other.files)
    assert "layer2.0.downsample.0.weights" in one.files
    for key in one.files:
        np.testing.assert_allclose(one[key], other[key], rtol=0, atol=1e-7)
    assert "blocks:" in outs[0].read_text()  # the spec as written, comments and blocks kept
    x = rng.random((3, 1, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(netspec.load(outs[0]).forward(x), netspec.load(outs[1]).forward(x), atol=1e-7)


def test_the_schema_accepts_blocks_and_uses():
    validator = jsonschema.Draft202012Validator(json_schema())
    assert list(validator.iter_errors(yaml.safe_load(BLOCKS))) == []
    data = yaml.safe_load(BLOCKS)
    data["layers"][1] = {"block": "basic", "repeat": 0, "filters": 4}
    assert sorted(e.message for e in validator.iter_errors(data)) == [
        "'name' is a required property",
        "0 is less than the minimum of 1",
    ]


# Problems, at both places ----------------------------------------------------------------------------------


def test_a_bad_value_in_a_block_names_the_definition_and_the_use(problems):
    text = BLOCKS.replace("kernel: [3, 3]", "kernel: [3, $k]").replace(
        "params: {filters: ~, stride: 1}", "params: {filters: ~, stride: 1, k: 0}", 1
    )
    layer1 = line_of(text, "name: layer1,")
    assert problems(text) == [  # the other copies, of layer1 and layer2, make the same mistake: said once
        f"{at(text, 'kernel: [3, $k]', '$k')}: NS104 layers[1] (use of 'basic', copy layer1.0, line {layer1}) → "
        "blocks.basic.layers[2].kernel[1]: must be at least 1, got 0",
    ]


def test_a_value_given_by_the_use_is_said_at_the_definition_with_the_use_that_gave_it(problems):
    text = BLOCKS.replace("repeat: 2, filters: 8", "repeat: 2, filters: -8")
    use = f"layers[2] (use of 'basic_down', copy layer2.0, line {line_of(text, 'name: layer2,')})"
    down = line_of(text, "downsample, block")
    definition = at(text, 'name: "0", type: conv2d, filters: $filters', "$filters")
    assert problems(text)[-1] == (
        f"{definition}: NS104 {use} → blocks.basic_down.layers[4] (use of 'conv_bn', copy layer2.0.downsample, "
        f"line {down}) → blocks.conv_bn.layers[0].filters: must be at least 1, got -8"
    )


def test_an_unknown_key_of_a_use_suggests_the_parameter(problems):
    text = BLOCKS.replace("repeat: 2, filters: 4}", "repeat: 2, filter: 4}")
    assert problems(text) == [
        f"{at(text, 'filter: 4', 'filter')}: NS101 layers[1].filter: unknown key 'filter'; did you mean 'filters'? "
        "a use of 'basic' takes name, block, repeat, start, first, inputs, filters, stride",
    ]


def test_a_missing_required_parameter(problems):
    text = BLOCKS.replace("repeat: 2, filters: 4}", "repeat: 2}")
    assert problems(text) == [
        f"{at(text, '{name: layer1,')}: NS102 layers[1]: block 'basic' needs 'filters' (a required parameter); "
        "add filters: <value> to the use",
    ]


def test_an_undeclared_parameter_names_the_nested_use(problems):
    text = BLOCKS.replace("kernel: 1, stride: $stride", "kernel: 1, stride: $strde")
    layer2, down = line_of(text, "name: layer2,"), line_of(text, "downsample, block")
    assert problems(text) == [
        f"{at(text, 'stride: $strde', '$strde')}: NS134 layers[2] (use of 'basic_down', copy layer2.0, line {layer2}) "
        f"→ blocks.basic_down.layers[4] (use of 'conv_bn', copy layer2.0.downsample, line {down}) → "
        "blocks.conv_bn.layers[0].stride: $strde is not a parameter of block 'conv_bn'; did you mean $stride? "
        "(declare it under params)",
    ]


def test_an_unknown_block_suggests_the_close_one(problems):
    text = BLOCKS.replace("block: basic, repeat: 2, filters: 4", "block: basci, repeat: 2, filters: 4")
    assert problems(text) == [
        f"{at(text, 'block: basci', 'basci')}: NS105 layers[1].block: no block named 'basci'; did you mean 'basic'?",
    ]


def test_inputs_inside_a_block_name_the_blocks_own_layers(problems):
    text = BLOCKS.replace("inputs: [bn2, input], activation", "inputs: [bn3, input], activation")
    layer1 = line_of(text, "name: layer1,")
    assert problems(text) == [
        f"{at(text, 'inputs: [bn3', 'bn3')}: NS127 layers[1] (use of 'basic', copy layer1.0, line {layer1}) → "
        "blocks.basic.layers[4].inputs[0]: 'bn3' names nothing in block 'basic': inside a block, inputs name the "
        "block's own layers and uses, or input (the block's input); did you mean 'bn2'?",
    ]


SELF = """\
netspec: 1
classes: [a, b]
input: {features: 4}
blocks:
  a:
    layers:
      - {type: dense, neurons: 4}
      - {name: inner, block: b}
  b:
    layers:
      - {name: again, block: a}
  loop:
    layers:
      - {name: me, block: loop}
layers:
  - {name: x, block: a}
  - {name: y, block: loop}
  - {type: dense, neurons: 2}
"""


def test_a_block_that_uses_itself_names_the_cycle(problems):
    assert problems(SELF) == [
        f"{at(SELF, 'again, block: a}', 'a}')}: NS132 layers[0] (use of 'a', copy x, line 16) → blocks.a.layers[1] "
        "(use of 'b', copy x.inner, line 8) → blocks.b.layers[0].block: block 'a' uses itself (a → b → a); "
        "a block cannot contain itself, remove the use",
        f"{at(SELF, 'me, block: loop', 'loop')}: NS132 layers[1] (use of 'loop', copy y, line 17) → "
        "blocks.loop.layers[0].block: block 'loop' uses itself (loop → loop); a block cannot contain itself, "
        "remove the use",
    ]


def _peak_bytes(work) -> int:
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_huge_repeat_is_refused_before_anything_is_made(problems):
    text = BLOCKS.replace("repeat: 2, filters: 4}", "repeat: 1000000000, filters: 4}")
    found: list[str] = []
    peak = _peak_bytes(lambda: found.extend(problems(text)))
    assert found == [
        f"{at(text, '{name: layer1,')}: NS133 layers[1]: this use of 'basic' (repeat 1,000,000,000) expands to "
        "5,000,000,000 layers; with the 1 layer before it, 5,000,000,001: a spec may have at most 10,000 layers once "
        "its blocks are expanded; lower repeat, or write fewer copies",
    ]
    assert peak < 5_000_000  # a copy of the block's five layers is never made a billion times


NESTED = """\
netspec: 1
classes: [a, b]
input: {features: 4}
blocks:
  ten:
    layers:
      - {type: dense, neurons: 4}
      - {type: dense, neurons: 4}
      - {type: dense, neurons: 4}
      - {type: dense, neurons: 4}
      - {type: dense, neurons: 4}
      - {type: dense, neurons: 4}
      - {type: dense, neurons: 4}
      - {type: dense, neurons: 4}
      - {type: dense, neurons: 4}
      - {type: dense, neurons: 4}
  stage:
    layers:
      - {name: unit, block: ten, repeat: 101}
layers:
  - {type: dense, neurons: 4}
  - {name: x, block: stage, repeat: 10}
  - {type: dense, neurons: 2}
"""


def test_two_levels_that_multiply_past_the_bound_are_refused_at_the_use(problems):
    assert problems(NESTED) == [
        f"{at(NESTED, '{name: x, block')}: NS133 layers[1]: this use of 'stage' (repeat 10) expands to 10,100 layers; "
        "with the 1 layer before it, 10,101: a spec may have at most 10,000 layers once its blocks are expanded; "
        "lower repeat, or write fewer copies",
    ]
    # 9 copies fit: 1 + 9 × 1,010 + 1 layers.
    assert problems(NESTED.replace("repeat: 10}", "repeat: 9}")) == []


def _chain_of_blocks(levels: int) -> str:
    """A spec whose one use nests `levels` blocks: b0 uses b1, ..., the last holds a dense layer."""
    blocks = "".join(f"  b{i}:\n    layers:\n      - {{name: n, block: b{i + 1}}}\n" for i in range(levels - 1))
    blocks += f"  b{levels - 1}:\n    layers:\n      - {{type: dense, neurons: 4}}\n"
    return (
        "netspec: 1\nclasses: [a, b]\ninput: {features: 4}\nblocks:\n"
        f"{blocks}layers:\n  - {{name: top, block: b0}}\n  - {{type: dense, neurons: 2}}\n"
    )


def test_nesting_deeper_than_the_bound_is_refused(problems):
    assert problems(_chain_of_blocks(MAX_DEPTH)) == []
    text = _chain_of_blocks(MAX_DEPTH + 1)
    uses = "".join(
        f"blocks.b{i - 1}.layers[0] (use of 'b{i}', copy top{'.n' * i}, line {7 + 3 * (i - 1)}) → "
        for i in range(1, MAX_DEPTH)
    )
    deepest = f"  b{MAX_DEPTH - 1}:\n    layers:\n      - {{name: n, block: b{MAX_DEPTH}}}"
    assert problems(text) == [
        f"{at(text, deepest, '{name: n')}: NS133 layers[0] (use of 'b0', copy top, line {line_of(text, 'top')}) → "
        f"{uses}blocks.b{MAX_DEPTH - 1}.layers[0]: blocks are nested {MAX_DEPTH + 1} deep here, more than the "
        f"{MAX_DEPTH} allowed; nest fewer blocks"
    ]


def test_a_layer_after_the_uses_is_located_where_it_is_written(problems):
    text = BLOCKS.replace("neurons: 3, activation: softmax", "neurons: 5, activation: softmax")
    assert problems(text) == [
        f"{at(text, 'neurons: 5', '5')}: NS123 layers[4].neurons: the output layer has 5 neurons but there are "
        "3 classes; give the last layer one neuron per class",
    ]


def test_a_use_reads_a_layer_above_it(problems):
    text = BLOCKS.replace("repeat: 2, filters: 4}", "repeat: 2, filters: 4, inputs: conv9}")
    assert problems(text) == [
        f"{at(text, 'inputs: conv9', 'conv9')}: NS127 layers[1].inputs: 'conv9' names no layer above this use; "
        "did you mean 'conv1'?",
    ]
    assert problems(text.replace("conv9", "conv1")) == []


def test_a_use_and_a_layer_cannot_share_a_name(problems):
    text = BLOCKS.replace("{name: pool, type: global_avgpool, inputs: layer2}", "{name: layer1, type: global_avgpool}")
    assert problems(text) == [
        f"{at(text, '{name: layer1, type', 'layer1')}: NS121 layers[3].name: name 'layer1' is already used by "
        "layers[1]; give each layer and use its own name",
    ]


# Any mutation of a spec with blocks gives a valid spec or located problems, never another exception.
_BASE = yaml.safe_load(BLOCKS)


def _places(document, prefix=()):
    yield prefix
    items = (
        document.items() if isinstance(document, dict) else enumerate(document) if isinstance(document, list) else ()
    )
    for key, value in items:
        yield from _places(value, (*prefix, key))


_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.text(max_size=8),
    st.sampled_from(["$filters", "$nope", "input", "basic", "conv_bn", "layer1", "0", "bn2"]),
    st.lists(st.sampled_from(["$filters", "input", "bn2", 3]), max_size=3),
    st.dictionaries(
        st.sampled_from(["block", "name", "stride", "filters", "repeat"]),
        st.sampled_from(["basic", 2, None, "$stride"]),
        max_size=3,
    ),
)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(
    place=st.sampled_from([p for p in _places(_BASE) if p]),
    action=st.sampled_from(["delete", "replace", "rename"]),
    value=_values,
    name=st.sampled_from(["name", "block", "repeat", "start", "first", "inputs", "params", "layers", "stride", "type"]),
)
def test_a_mutated_spec_with_blocks_is_valid_or_located_problems(tmp_path, place, action, value, name):
    document = mutate(_BASE, place, action, value, name)
    path = tmp_path / "mutated.yaml"
    path.write_text(yaml.safe_dump(document))
    for problem in netspec.check(path):
        assert problem.code.startswith("NS") and problem.file == str(path) and problem.line is not None


ROOT = Path(__file__).resolve().parent.parent


def test_the_documented_example_and_its_problems_are_real(write_spec):
    """docs/spec-format.md shows examples/resnet-blocks.yaml (its comments aside) and what validate says of a mistake."""
    docs = (ROOT / "docs" / "spec-format.md").read_text()
    section = docs[docs.index("## Blocks") : docs.index("## Weights and biases")]
    example = (ROOT / "examples" / "resnet-blocks.yaml").read_text()
    shown = "\n".join(line for line in example.splitlines() if not line.startswith("#")) + "\n"
    assert f"```yaml\n{shown}```" in section
    assert netspec.check(ROOT / "examples" / "resnet-blocks.yaml") == []
    path = write_spec(shown.replace("repeat: 2, filters: 32", "repeat: 2, filters: 0"))
    found = [str(p).replace(str(path), "spec.yaml") for p in netspec.check(path)]
    documented = [line for line in section.splitlines() if line.startswith("spec.yaml:")]
    assert documented == [found[0], found[-1]]
    names = [layer.name for layer in netspec.load(ROOT / "examples" / "resnet-blocks.yaml").layers]
    assert names[:3] == ["conv1", "bn1", "layer1.0.conv1"] and "layer2.0.downsample.1" in names


def test_a_spec_made_in_code_may_use_blocks_too(both):
    from pydantic import ValidationError

    from netspec.validation import problems_from

    spec = netspec.Spec.model_validate(yaml.safe_load(BLOCKS))
    flat, _ = read_spec(both[1])
    assert spec.model_dump(exclude={"blocks"}) == flat.model_dump(exclude={"blocks"})
    bad = yaml.safe_load(BLOCKS.replace("kernel: 1, stride: $stride", "kernel: 1, stride: $strde"))
    with pytest.raises(ValidationError) as err:
        netspec.Spec.model_validate(bad)
    assert [str(p) for p in problems_from(err.value, netspec.Spec)] == [
        "NS134 layers[2] (use of 'basic_down', copy layer2.0) → blocks.basic_down.layers[4] (use of 'conv_bn', copy "
        "layer2.0.downsample) → blocks.conv_bn.layers[0].stride: $strde is not a parameter of block 'conv_bn'; did you "
        "mean $stride? (declare it under params)"
    ]


def test_copies_of_a_large_array_are_counted_as_aliases_are(problems):
    """6,000 numbers written once, copied 1,000 times, would be 6,000,000 values to read: refused at the use."""
    numbers = ", ".join(["0.5"] * 6_000)
    text = f"""\
netspec: 1
classes: [a, b]
input: {{features: 4}}
blocks:
  big:
    params: {{n: 4}}
    layers:
      - {{type: dense, neurons: $n, bias: [{numbers}]}}
layers:
  - {{name: many, block: big, repeat: 1000}}
  - {{type: dense, neurons: 2}}
"""
    found: list[str] = []
    peak = _peak_bytes(lambda: found.extend(problems(text)))
    assert found == [
        f"{at(text, '{name: many')}: NS004 layers[0]: the blocks expand to more than 5,000,000 values (every copy of a "
        "layer counted); move large arrays to a .npy/.npz weight file, or write fewer copies"
    ]
    assert peak < 20_000_000  # the copies share the one list: nothing like 1,000 lists of 6,000 floats (~200 MB)


def test_validate_formats_name_the_uses_too(write_spec):
    path = write_spec(BLOCKS.replace("kernel: 1, stride: $stride", "kernel: 1, stride: $strde"))
    uses = (
        "layers[2] (use of 'basic_down', copy layer2.0, line 33) → blocks.basic_down.layers[4] "
        "(use of 'conv_bn', copy layer2.0.downsample, line 23) → "
    )
    record = json.loads(invoke("validate", "--format", "json", path).output.splitlines()[0])
    assert (record["line"], record["code"], record["path"], record["via"]) == (
        28,
        "NS134",
        "blocks.conv_bn.layers[0].stride",
        uses,
    )
    github = invoke("validate", "--format", "github", path).output.splitlines()[0]
    assert github.startswith(f"::error file={path},line=28,col=73,title=NS134::{uses}blocks.conv_bn.layers[0].stride: ")


# One change to BLOCKS each: (old, new, what JSON Schema can say of it: True when it agrees with netspec).
SCHEMA_VARIANTS = [
    ("", "", True),
    ("{name: layer1, block: basic,", "{block: basic,", True),
    ("repeat: 2, filters: 4}", "repeat: 0, filters: 4}", True),
    ("repeat: 2, filters: 4}", "repeat: two, filters: 4}", True),
    ("repeat: 2, filters: 4}", "repeat: 2, start: -1, filters: 4}", True),
    ("first: {block: basic_down, stride: 2}", "first: 2", True),
    ("repeat: 2, filters: 4}", "repeat: 2, filters: 4, inputs: [conv1, conv1]}", True),
    ("block: basic, repeat: 2, filters: 4", "block: 3, repeat: 2, filters: 4", True),
    (
        "  conv_bn:\n    params: {filters: ~, stride: 1}\n",
        "  conv_bn:\n    params: {filters: ~, stride: 1}\n    uses: 2\n",
        True,
    ),
    # What only netspec knows: the names of blocks and parameters, and what a block's layers become.
    ("block: basic, repeat: 2, filters: 4", "block: basci, repeat: 2, filters: 4", False),
    ("repeat: 2, filters: 4}", "repeat: 2, filter: 4}", False),
    ("kernel: 1, stride: $stride", "kernel: 1, stride: $strde", False),
]


@pytest.mark.parametrize("old,new,agrees", SCHEMA_VARIANTS, ids=[v[1] or "as written" for v in SCHEMA_VARIANTS])
def test_the_schema_and_netspec_agree_on_blocks_where_json_schema_can_say(write_spec, old, new, agrees):
    assert old in BLOCKS
    text = BLOCKS.replace(old, new, 1)
    by_netspec = not netspec.check(write_spec(text))
    by_schema = jsonschema.Draft202012Validator(json_schema()).is_valid(yaml.safe_load(text))
    if new == "":
        assert by_netspec and by_schema
    elif agrees:
        assert not by_netspec and not by_schema
    else:
        assert (by_netspec, by_schema) == (False, True)


def test_a_layer_type_used_as_a_block_says_to_write_type(problems):
    text = BLOCKS.replace("{name: pool, type: global_avgpool, inputs: layer2}", "{name: pool, block: global_avgpool}")
    assert text != BLOCKS
    assert problems(text) == [
        f"{at(text, 'block: global_avgpool', 'global_avgpool')}: NS105 layers[3].block: 'global_avgpool' is a layer "
        "type, not a block of this spec: write type: global_avgpool",
    ]


def test_a_parameter_reference_at_a_use_in_layers_is_said_at_the_use(problems):
    text = BLOCKS.replace("repeat: 2, filters: 4}", "repeat: 2, filters: $filters}")
    assert text != BLOCKS
    assert problems(text) == [
        f"{at(text, 'filters: $filters}', '$filters')}: NS134 layers[1].filters: $filters stands for a block's "
        "parameter only inside a block's layers; at a use in layers, give the value itself (filters: 64, say)",
    ]
