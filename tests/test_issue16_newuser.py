"""What tripped a newcomer writing a first spec with blocks and loading PyTorch weights (issue 16).

Each test states the message a mistake gets, whole, at the line and column the test's own text gives.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import where

safetensors_numpy = pytest.importorskip("safetensors.numpy", reason="the reference writer (pip install -e '.[test]')")

BLOCKS = """\
netspec: 1
classes: [a, b]
input: {image: {width: 8, height: 8, color: grayscale}}
blocks:
  basic:
    params: {filters: ~}
    layers:
      - {name: conv1, type: conv2d, filters: $filters, kernel: 3, padding: 1}
      - {name: add, type: add, inputs: [conv1, input], activation: relu}
layers:
  - {name: stem, type: conv2d, filters: 4, kernel: 3, padding: 1}
  - {name: layer1, type: basic, repeat: 2, filters: 4}
  - {name: pool, type: global_avgpool}
  - {name: fc, type: dense, neurons: 2, activation: softmax}
"""


def test_a_block_used_with_type_says_to_write_block(problems):
    # Before: "unknown layer type 'basic'; did you mean 'slice'?", which sends a newcomer the wrong way.
    assert problems(BLOCKS) == [
        f"{where(BLOCKS, 'type: basic', 'basic')}: NS105 layers[1].type: 'basic' is a block of this spec, not a "
        "layer type: write block: basic"
    ]


def test_a_layer_type_misspelt_in_a_spec_with_blocks_still_gets_did_you_mean(problems):
    text = BLOCKS.replace("type: basic", "block: basic").replace("type: global_avgpool", "type: global_avgpol")
    assert problems(text) == [
        f"{where(text, 'global_avgpol}', 'global')}: NS105 layers[2].type: unknown layer type 'global_avgpol'; "
        "did you mean 'global_avgpool'?"
    ]


PYTORCH = """\
netspec: 1
classes: [a, b]
input: {image: {width: 3, height: 2, color: grayscale}}
weights_file: {file: other.safetensors, names: pytorch}
layers:
  - {name: flat, type: flatten}
  - {name: fc, type: dense, neurons: 2}
"""


def _save(path, names: dict[str, tuple[int, ...]]) -> None:
    safetensors_numpy.save_file({key: np.zeros(shape, np.float32) for key, shape in names.items()}, str(path))


def test_another_networks_state_dict_is_said_so_without_misleading_suggestions(problems, tmp_path):
    # An nn.Sequential's keys: '0.weight' is not a misspelt 'fc.weight' (before, each was suggested so).
    _save(
        tmp_path / "other.safetensors", {"0.weight": (4, 1, 3, 3), "0.bias": (4,), "3.weight": (2, 8), "3.bias": (2,)}
    )
    assert problems(PYTORCH) == [
        f"{where(PYTORCH, '{file: other')}: NS211 weights_file: other.safetensors does not match the spec's layers "
        "by PyTorch's names (2 keys missing, 4 unexpected; none of the file's 4 keys names a layer parameter: "
        "another network's weights?): Missing key(s): 'fc.weight', 'fc.bias'; Unexpected key(s): '0.bias', "
        "'0.weight', '3.bias', '3.weight'"
    ]


def test_a_renamed_layer_is_suggested_by_its_name_and_parameter(problems, tmp_path):
    # 'fc1.bias' is 'fc.bias' renamed; 'fc1.scale' holds no parameter a missing key has, so it gets no guess.
    _save(tmp_path / "other.safetensors", {"fc1.weight": (2, 6), "fc1.bias": (2,), "fc1.scale": (2,)})
    assert problems(PYTORCH) == [
        f"{where(PYTORCH, '{file: other')}: NS211 weights_file: other.safetensors does not match the spec's layers "
        "by PyTorch's names (2 keys missing, 3 unexpected; none of the file's 3 keys names a layer parameter: "
        "another network's weights?): Missing key(s): 'fc.weight', 'fc.bias'; Unexpected key(s): 'fc1.bias' (did "
        "you mean 'fc.bias'?), 'fc1.scale', 'fc1.weight' (did you mean 'fc.weight'?)"
    ]


def test_a_far_name_gets_no_guess_where_some_keys_match(problems, tmp_path):
    text = PYTORCH.replace("  - {name: flat", "  - {name: layer4.1.conv2, type: dense, neurons: 4}\n  - {name: flat")
    _save(
        tmp_path / "other.safetensors",
        {"features.10.conv.2.weight": (4, 6), "features.10.conv.2.bias": (4,), "fc.weight": (2, 4), "fc.bias": (2,)},
    )
    assert problems(text) == [
        f"{where(text, '{file: other')}: NS211 weights_file: other.safetensors does not match the spec's layers "
        "by PyTorch's names (2 keys missing, 2 unexpected): Missing key(s): 'layer4.1.conv2.weight', "
        "'layer4.1.conv2.bias'; Unexpected key(s): 'features.10.conv.2.bias', 'features.10.conv.2.weight'"
    ]


def test_a_long_title_is_wrapped_inside_the_picture_and_above_the_blocks_note(write_spec):
    # The draw of a first spec with blocks ran its description past the right edge and over the note.
    pytest.importorskip("matplotlib", reason="pip install 'matplotlib>=3.7' (netspec's plot extra)")
    import netspec
    from netspec.pictures import boxes

    text = BLOCKS.replace("type: basic", "block: basic").replace(
        "netspec: 1\n", "netspec: 1\nname: tiny-resnet\ndescription: A tiny ResNet for 32×32 pictures of 10 classes.\n"
    )
    figure = boxes.draw(netspec.load(write_spec(text)))
    figure.set_dpi(120)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    (ax,) = figure.axes
    title, note = ax.texts[:2]
    assert title.get_text() == "tiny-resnet — A tiny ResNet for\n32×32 pictures of 10 classes."
    assert note.get_text() == boxes.UNITS_NOTE
    picture = figure.bbox
    for drawn in ax.texts:
        extent = drawn.get_window_extent(renderer)
        assert picture.x0 <= extent.x0 and extent.x1 <= picture.x1, drawn.get_text()
    # y grows upwards in pixels: the title's lowest pixel stays above the note's highest.
    assert title.get_window_extent(renderer).y0 > note.get_window_extent(renderer).y1


def test_an_absolute_weights_file_path_is_answered_with_the_path_to_write(problems, tmp_path):
    # A newcomer pastes where the converted file lies; "give a relative path" did not say which, nor that a file
    # elsewhere must be moved.
    _save(tmp_path / "other.safetensors", {"fc.weight": (2, 6), "fc.bias": (2,)})
    inside = PYTORCH.replace("{file: other.safetensors", f"{{file: '{tmp_path / 'other.safetensors'}'")
    assert problems(inside) == [
        f"{where(inside, '{file:')}: NS207 weights_file: '{tmp_path / 'other.safetensors'}' is an absolute path; "
        "write 'other.safetensors', relative to the spec's folder"
    ]
    elsewhere = tmp_path.parent / f"{tmp_path.name}-downloads" / "resnet18.safetensors"
    outside = PYTORCH.replace("{file: other.safetensors", f"{{file: '{elsewhere}'")
    assert problems(outside) == [
        f"{where(outside, '{file:')}: NS207 weights_file: '{elsewhere}' is an absolute path; copy resnet18.safetensors "
        f"into the spec's folder ({tmp_path}) and write 'resnet18.safetensors'"
    ]
