"""What the zoo's mobile specs (MobileNet V2, SqueezeNet 1.1, EfficientNet-B0) need of netspec beyond ResNet's:
a use named with dots (two numbered levels, features.<stage>.<index>), as torchvision names EfficientNet's blocks.
Their parameter counts and scores against torchvision are tests/test_zoo.py's (tests/zoo_oracle.py's table)."""

from __future__ import annotations

from pathlib import Path

import pytest

from netspec.errors import SpecError
from netspec.loader import read_spec

STAGES = """\
netspec: 1
classes: [a, b]
input: {image: {width: 8, height: 8}}
blocks:
  mbconv:
    params: {filters: ~, stride: 1}
    layers:
      - {name: block.0.0, type: conv2d, filters: $filters, kernel: 3, stride: $stride, padding: 1}
      - {name: block.0.1, type: batchnorm, activation: silu}
layers:
  - {name: features.0.0, type: conv2d, filters: 4, kernel: 3, padding: 1}
  - {name: %s, block: mbconv, repeat: 2, filters: 8, first: {stride: 2}}
  - {name: features.2, block: mbconv, repeat: 1, filters: 16}
  - {name: avgpool, type: global_avgpool}
  - {name: classifier.1, type: dense, neurons: 2, activation: softmax}
"""


def test_a_use_named_with_dots_numbers_its_copies_under_that_name(tmp_path: Path):
    path = tmp_path / "stages.yaml"
    path.write_text(STAGES % "features.1", encoding="utf-8")
    spec, _ = read_spec(path)
    assert [layer.name for layer in spec.layers] == [
        "features.0.0",
        *("features.1.0.block.0.0", "features.1.0.block.0.1", "features.1.1.block.0.0", "features.1.1.block.0.1"),
        *("features.2.0.block.0.0", "features.2.0.block.0.1"),
        "avgpool",
        "classifier.1",
    ]
    assert spec.layers[1].stride == [2, 2] and spec.layers[3].stride == [1, 1]  # first: applies to features.1.0


@pytest.mark.parametrize("name", ["features..1", "features.1.", ".features", "features 1"])
def test_a_use_s_name_follows_the_layer_name_rule(tmp_path: Path, name: str):
    path = tmp_path / "stages.yaml"
    path.write_text(STAGES % repr(name), encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        read_spec(path)
    [problem] = caught.value.problems
    assert (problem.code, problem.line) == ("NS103", 12)
    assert problem.message == (
        "a use's name is a layer name's beginning: layer names are ASCII letters, digits, '_' and '-', in parts "
        f"joined by dots (as layer1.0.conv1), got '{name}' (text)"
    )
