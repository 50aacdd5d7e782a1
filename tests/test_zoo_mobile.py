"""What the zoo's mobile specs (MobileNet V2, SqueezeNet 1.1, EfficientNet-B0) need of netspec beyond ResNet's:
a use named with dots (two numbered levels, features.<stage>.<index>), as torchvision names EfficientNet's blocks,
also in the JSON Schema; and a dense layer that takes a 1 × 1 Conv2d's weight by PyTorch's names (EfficientNet's
squeeze-and-excitation). Their parameter counts and scores against torchvision are tests/test_zoo.py's
(tests/zoo_oracle.py's table)."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from netspec.errors import SpecError
from netspec.loader import read_spec
from netspec.schema import json_schema

ZOO = sorted((Path(__file__).resolve().parent.parent / "specs" / "zoo").glob("*.yaml"))

STAGES = """\
netspec: 1
classes: [a, b]
input: {image: {width: 8, height: 8}}
blocks:
  mbconv:
    params: {filters: ~, stride: 1}
    layers:
      - {name: conv, type: conv2d, filters: $filters, kernel: 3, stride: $stride, padding: 1}
      - {name: bn, type: batchnorm, activation: silu}
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
        *("features.1.0.conv", "features.1.0.bn", "features.1.1.conv", "features.1.1.bn"),
        *("features.2.0.conv", "features.2.0.bn"),
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


ROWS = """\
netspec: 1
classes: [a, b]
input: {image: {width: 8, height: 8}}
blocks:
  plain:
    params: {filters: ~}
    layers:
      - {name: conv, type: conv2d, filters: $filters, kernel: 3, padding: 1}
  added:
    params: {filters: ~}
    layers:
      - {name: conv, type: conv2d, filters: $filters, kernel: 3, padding: 1}
      - {name: add, type: add, inputs: [conv, input]}
layers:
  - {name: features, block: plain, repeat: 1, start: 0, filters: 4}
  - {name: features, block: added, repeat: 2, start: %s, filters: 4}
  - {name: pool, type: global_avgpool, inputs: features}
  - {name: classifier, type: dense, neurons: 2, activation: softmax}
"""


def test_numbered_uses_may_share_a_name_to_number_one_row_of_copies(tmp_path: Path):
    path = tmp_path / "rows.yaml"
    path.write_text(ROWS % 1, encoding="utf-8")
    spec, _ = read_spec(path)
    names = [layer.name for layer in spec.layers]
    assert names == [
        *("features.0.conv", "features.1.conv", "features.1.add", "features.2.conv", "features.2.add"),
        *("pool", "classifier"),
    ]
    assert spec.layers[5].inputs == "features.2.add"  # the name reads the last copy made, as model.features


def test_numbered_uses_that_share_a_name_may_not_number_a_copy_twice(tmp_path: Path):
    path = tmp_path / "rows.yaml"
    path.write_text(ROWS % 0, encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        read_spec(path)
    [problem] = caught.value.problems
    assert (problem.code, problem.line, problem.dotted_path) == ("NS121", 16, "layers[1].start")
    assert problem.message == (
        "the copies of 'features' are numbered from 0, but layers[0] made features.0 already; start at 1 "
        "(uses that share a name number one row of copies)"
    )


def test_a_use_without_repeat_shares_its_name_with_no_other_use(tmp_path: Path):
    path = tmp_path / "rows.yaml"
    path.write_text((ROWS % 1).replace("repeat: 2, start: 1, ", ""), encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        read_spec(path)
    [problem] = caught.value.problems
    assert (problem.code, problem.line, problem.dotted_path) == ("NS121", 16, "layers[1].name")
    assert problem.message == "name 'features' is already used by layers[0]; give each layer and use its own name"


@pytest.mark.parametrize("path", ZOO, ids=lambda path: path.stem)
def test_the_json_schema_accepts_every_zoo_spec(path: Path):
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert [error.message for error in jsonschema.Draft202012Validator(json_schema()).iter_errors(spec)] == []


GATE = """\
netspec: 1
classes: [a, b, c, d, e, f]
input: {image: {width: 5, height: 4, scale: [-1, 1]}}
weights_file: {file: gate.safetensors, names: pytorch}
layers:
  - {name: conv, type: conv2d, filters: 6, kernel: 3, padding: 1}
  - {name: se.avgpool, type: global_avgpool}
  - {name: se.fc1, type: dense, neurons: 2, activation: silu}
  - {name: se.fc2, type: dense, neurons: 6, activation: sigmoid}
  - {name: se.scale, type: multiply, inputs: [conv, se.fc2]}
  - {name: pool, type: global_avgpool}
  - {name: out, type: activation, activation: softmax}
"""


def gated():
    """torchvision's SqueezeExcitation after a convolution, its two small layers 1 × 1 Conv2d's; then the mean."""
    import torch
    from torch import nn

    class Gated(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 6, 3, padding=1)
            self.se = nn.Module()
            self.se.fc1, self.se.fc2 = nn.Conv2d(6, 2, 1), nn.Conv2d(2, 6, 1)

        def forward(self, x):
            y = self.conv(x)
            gate = y.mean(dim=(2, 3), keepdim=True)
            gate = torch.sigmoid(self.se.fc2(nn.functional.silu(self.se.fc1(gate))))
            return torch.softmax((y * gate).mean(dim=(2, 3)), dim=1)

    return Gated().eval()


def test_a_dense_layer_takes_a_1x1_conv2d_s_weight_from_a_state_dict(tmp_path: Path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    from safetensors.torch import save_file

    import netspec

    torch.manual_seed(3)
    model = gated()
    assert model.state_dict()["se.fc1.weight"].shape == (2, 6, 1, 1)
    save_file(model.state_dict(), tmp_path / "gate.safetensors")
    (tmp_path / "gate.yaml").write_text(GATE, encoding="utf-8")
    network = netspec.load(tmp_path / "gate.yaml")
    x = torch.rand(2, 3, 4, 5) * 2 - 1
    with torch.no_grad():
        expected = model(x).numpy()
    assert network.forward(x.numpy()) == pytest.approx(expected, rel=1e-5)


def test_a_dense_layer_refuses_a_conv2d_weight_of_a_larger_kernel(tmp_path: Path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    from safetensors.torch import save_file

    import netspec

    state = gated().state_dict()
    state["se.fc1.weight"] = torch.zeros(2, 6, 3, 3)
    save_file(state, tmp_path / "gate.safetensors")
    (tmp_path / "gate.yaml").write_text(GATE, encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        netspec.load(tmp_path / "gate.yaml")
    [problem] = caught.value.problems
    assert (problem.code, problem.line) == ("NS204", 8)
    assert problem.message == (
        "layer 'se.fc1': gate.safetensors holds 'se.fc1.weight' of shape (2, 6, 3, 3), but the layer needs (2, 6) "
        "for its weights (neuron × input)"
    )
