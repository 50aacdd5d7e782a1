"""The registry of layer kinds: a new kind is one module and one registry line, and everything follows."""

from __future__ import annotations

import sys
from typing import Literal

import numpy as np
import pytest
from click.testing import CliRunner

import netspec
from netspec.cli import main
from netspec.fields import SpecModel
from netspec.layers import KINDS, common
from netspec.layers.common import LayerName
from netspec.layers.kind import OneInput, dims

from conftest import numeric_gradient

# A kind that exists only here: what a module of netspec/layers/ would hold.


class Scale(SpecModel):
    """Multiplies every value by one learned factor."""

    type: Literal["scale"] = "scale"
    name: LayerName | None = None
    factor: float = 1.0


def output_shape(layer: Scale, input_shape):
    return input_shape


def param_shapes(layer: Scale, input_shape):
    return {"factor": (1,)}


fans = common.unit_fans


def axis_meanings(layer: Scale):
    return {"factor": ("factor",)}


def multiply_adds(layer: Scale, input_shape):
    return int(np.prod(input_shape))


def forward(layer: Scale, params, x, train=False, rng=None):
    def backprop(dy, preactivation=False, input_grad=True):
        return (dy * params["factor"] if input_grad else None), {"factor": np.array([(dy * x).sum()])}

    return x * params["factor"], backprop


def to_onnx(node, x: str, emit) -> str:
    return emit.node("Mul", [x, emit.constant(f"{node.name}.factor", node.params["factor"])], node.name)


def caption(layer: Scale, output_shape) -> str:
    return f"scale\n{dims(output_shape)}"


SCALE = OneInput(Scale, sys.modules[__name__], passes="elementwise")

SPEC = """\
netspec: 1
classes: [a, b]
input: {features: 3}
layers:
  - {name: hidden, type: dense, neurons: 4, activation: tanh}
  - {name: times, type: scale, factor: 2.0}
  - {name: output, type: dense, neurons: 2, activation: softmax}
"""


@pytest.fixture
def scale_registered(monkeypatch):
    """The registry with the scale kind added: the one line a new kind needs."""
    monkeypatch.setitem(KINDS, "scale", SCALE)


def test_a_kind_registered_once_is_validated_built_run_trained_and_summarised(scale_registered, write_spec):
    network = netspec.load(write_spec(SPEC))
    times = network.layers[1]
    assert (times.type, times.params["factor"].tolist(), times.output_shape) == ("scale", [2.0], (4,))
    x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    hidden = network.layers[0]
    h = np.tanh(x @ hidden.params["weights"].T + hidden.params["bias"]) * 2.0
    z = h @ network.layers[2].params["weights"].T + network.layers[2].params["bias"]
    expected = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(network.forward(x), expected, rtol=1e-5)
    # Its gradient reaches the optimizer: training changes the factor.
    before = times.params["factor"].copy()
    network.fit(x, [0, 1, 0, 1, 0], epochs=2, batch_size=5, val_split=0)
    assert times.params["factor"] != before
    result = CliRunner().invoke(main, ["summary", str(write_spec(SPEC))])
    assert result.exit_code == 0, result.output
    assert "times   scale     (4,)" in result.output


def test_a_registered_kind_backprops_through_the_network(scale_registered, write_spec):
    network = netspec.load(write_spec(SPEC.replace("{features: 3}", "{features: 3}\ndtype: float64")))
    x = np.random.default_rng(1).normal(size=(2, 3))
    g = np.random.default_rng(2).normal(size=(2, 2))
    out, backward = network.forward_with_backprop(x)
    dx, grads = backward(g)

    def loss(values):
        return float((network.forward_with_backprop(values)[0] * g).sum())

    np.testing.assert_allclose(dx, numeric_gradient(lambda: loss(x), x), rtol=1e-6, atol=1e-8)
    factor = network.layers[1].params["factor"]
    np.testing.assert_allclose(grads[1]["factor"], numeric_gradient(lambda: loss(x), factor), rtol=1e-6)


def test_a_registered_kind_is_exported_to_onnx(scale_registered, write_spec, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    from netspec.interop.export import export

    network = netspec.load(write_spec(SPEC))
    path = export(network, tmp_path / "net.onnx")
    x = np.random.default_rng(3).normal(size=(4, 3)).astype(np.float32)
    (scores,) = onnxruntime.InferenceSession(str(path)).run(None, {"input": x})
    np.testing.assert_allclose(scores, network.forward(x), rtol=1e-5, atol=1e-6)


def test_an_unregistered_type_is_refused_with_the_registered_ones(write_spec, problems):
    found = problems(SPEC)
    # 'scale' is close enough to the registered 'slice' to be taken for a misspelling of it.
    assert found == ["spec.yaml:6:25: NS105 layers[1].type: unknown layer type 'scale'; did you mean 'slice'?"]
    found = problems(SPEC.replace("type: scale", "type: magnify"))
    assert len(found) == 1 and "unknown layer type 'magnify'" in found[0]
    assert (
        "dense, conv2d, maxpool2d, avgpool2d, global_avgpool, flatten, dropout, batchnorm, lrn, channel_shuffle, slice"
        in found[0]
    )
