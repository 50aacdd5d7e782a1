"""Every activation on every layer that takes one (dense, conv2d, batchnorm, the activation layer).

A network with the activation on each of them is compared with the same network written in PyTorch
(float64: values to 1e-9, gradients of every array to 1e-9), trained a step, and exported to ONNX
for onnxruntime.
"""

from __future__ import annotations

import numpy as np
import pytest

import netspec
from netspec.interop.export import export
from netspec.layers.activation import ActivationLayer

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install -e '.[test]')")
F = torch.nn.functional

ACTIVATIONS = ["relu6", "hard_sigmoid", "hard_swish", "silu", "gelu", "elu", "leaky_relu", "relu"]
TORCH = {
    "relu6": F.relu6,
    # F.hardsigmoid's backward multiplies by float32's 1/6 even in float64: its definition instead.
    "hard_sigmoid": lambda z: F.relu6(z + 3) / 6,
    "hard_swish": F.hardswish,
    "silu": F.silu,
    "gelu": F.gelu,
    "elu": lambda z: F.elu(z, 0.5),
    "leaky_relu": lambda z: F.leaky_relu(z, 0.2),
    "relu": F.relu,
}
ALPHA = {"elu": ", alpha: 0.5", "leaky_relu": ", alpha: 0.2"}

SPEC = """\
netspec: 1
classes: [a, b, c]
input: {image: {width: 6, height: 5, color: rgb}}
dtype: DTYPE
seed: 3
layers:
  - {name: conv, type: conv2d, filters: 4, kernel: 3, padding: same, activation: ACT}
  - {name: norm, type: batchnorm, activation: ACT, mean: {init: normal, seed: 1}, var: 2.0, scale: {init: normal, seed: 2}}
  - {name: act, type: activation, activation: ACT}
  - {name: pool, type: maxpool2d, size: 2}
  - {name: flat, type: flatten}
  - {name: hidden, type: dense, neurons: 5, activation: ACT}
  - {name: output, type: dense, neurons: 3, activation: softmax}
"""


def spec_text(activation: str, dtype: str = "float64") -> str:
    return SPEC.replace("activation: ACT", f"activation: {activation}{ALPHA.get(activation, '')}").replace(
        "DTYPE", dtype
    )


def torch_logits(network, activation: str, x: torch.Tensor, train: bool):
    """The network's values before its softmax, written in PyTorch with the network's arrays (as leaves)."""
    act = TORCH[activation]
    p = {
        f"{layer.name}.{key}": torch.tensor(array, requires_grad=key not in ("mean", "var"))
        for layer in network.layers
        for key, array in layer.params.items()
    }
    z = act(F.conv2d(x, p["conv.weights"], p["conv.bias"], padding=1))
    z = F.batch_norm(
        z, p["norm.mean"], p["norm.var"], p["norm.scale"], p["norm.shift"], training=train, momentum=0.1, eps=1e-5
    )
    z = F.max_pool2d(act(act(z)), 2).flatten(1)
    z = act(F.linear(z, p["hidden.weights"], p["hidden.bias"]))
    return F.linear(z, p["output.weights"], p["output.bias"]), p


@pytest.mark.parametrize("train", [False, True], ids=["running", "training"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_each_activation_on_each_layer_is_pytorchs(write_spec, activation, train):
    network = netspec.load(write_spec(spec_text(activation)))
    x = np.random.default_rng(0).normal(0, 2, size=(4, 3, 5, 6))
    theirs, p = torch_logits(network, activation, torch.tensor(x, requires_grad=True), train)
    # The scores before softmax, with its gradient folded in, as training computes them.
    y, backward = network.forward_with_backprop(x, train=train)
    z = theirs.detach().numpy()
    np.testing.assert_allclose(y, torch.softmax(theirs, 1).detach().numpy(), rtol=1e-9, atol=1e-12)
    g = np.random.default_rng(1).normal(size=z.shape)
    (theirs * torch.from_numpy(g)).sum().backward()
    _, grads = backward(g, preactivation=True)
    for layer, layer_grads in zip(network.layers, grads):
        for key, grad in layer_grads.items():
            np.testing.assert_allclose(
                grad, p[f"{layer.name}.{key}"].grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=f"{layer.name}.{key}"
            )


def test_the_activation_layer_is_its_activation_alone():
    from netspec.layers import KINDS

    kind = KINDS["activation"]
    layer = ActivationLayer(activation="elu")  # alpha 1, PyTorch's default
    x = np.array([[-2.0, -0.5, 0.0, 1.5]])
    assert kind.output_shape(layer, [(4,)]) == (4,) and kind.param_shapes(layer, [(4,)]) == {}
    assert kind.passes == "elementwise" and kind.neurons is None
    y, backprop = kind.forward(layer, {}, [x])
    np.testing.assert_allclose(y, F.elu(torch.tensor(x)).numpy(), rtol=1e-15)
    np.testing.assert_array_equal(kind.runner(layer, {})(x), y)
    assert x[0, 0] == -2.0  # running does not write over its input (the layer before's output, or the caller's)
    (dx,), grads = backprop(np.ones_like(x))
    np.testing.assert_allclose(dx, [[np.exp(-2.0), np.exp(-0.5), 1.0, 1.0]], rtol=1e-15)
    assert grads == {}
    assert kind.caption(layer, (8, 6, 6)) == "activation, elu\n8×6×6"
    assert kind.activation(layer) == "elu"


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_each_activation_trains_a_step(write_spec, activation):
    network = netspec.load(write_spec(spec_text(activation, "float32")))
    before = {f"{layer.name}.{k}": v.copy() for layer in network.layers for k, v in layer.params.items()}
    x = np.random.default_rng(2).normal(size=(8, 3, 5, 6)).astype(np.float32)
    history = network.fit(x, [0, 1, 2, 0, 1, 2, 0, 1], epochs=1, batch_size=8, val_split=0)
    assert np.isfinite(history.epochs[-1].loss)
    for layer in network.layers:
        for key, array in layer.params.items():
            assert not np.array_equal(array, before[f"{layer.name}.{key}"]), f"{layer.name}.{key} did not change"


def test_a_last_activation_layer_with_softmax_gives_probabilities_and_trains_on_logits(write_spec):
    text = spec_text("relu").replace(
        "  - {name: output, type: dense, neurons: 3, activation: softmax}",
        "  - {name: output, type: dense, neurons: 3}\n  - {name: probabilities, type: activation, activation: softmax}",
    )
    network = netspec.load(write_spec(text))
    assert network.ends_in_softmax
    x = np.random.default_rng(5).normal(size=(6, 3, 5, 6))
    np.testing.assert_allclose(network.forward(x).sum(axis=1), 1, rtol=1e-12)
    history = network.fit(x, [0, 1, 2, 0, 1, 2], epochs=2, batch_size=6, val_split=0)
    assert all(np.isfinite(epoch.loss) for epoch in history.epochs)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_each_activation_exports_to_what_onnxruntime_computes(write_spec, tmp_path, activation):
    pytest.importorskip("onnx", reason="pip install 'onnx>=1.16' 'onnxruntime>=1.18' (netspec's onnx extra)")
    ort = pytest.importorskip("onnxruntime")
    network = netspec.load(write_spec(spec_text(activation, "float32")))
    path = export(network, tmp_path / "model.onnx")  # checked by onnx.checker as it is written
    # Values across the kinks and the tails: inputs of either sign, some large.
    x = np.random.default_rng(6).normal(0, 3, size=(16, 3, 5, 6)).astype(np.float32)
    scores = ort.InferenceSession(str(path)).run(None, {"input": x})[0]
    np.testing.assert_allclose(scores, network.forward(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("activation", [a for a in ACTIVATIONS if a not in ("silu", "gelu")])
def test_exported_activations_import_back_as_they_were(write_spec, tmp_path, activation):
    """silu and gelu are exported as several nodes reading one tensor: their import waits for graphs."""
    pytest.importorskip("onnx", reason="pip install 'onnx>=1.16' 'onnxruntime>=1.18' (netspec's onnx extra)")
    from netspec.interop.importer import import_model

    network = netspec.load(write_spec(spec_text(activation, "float32")))
    import_model(export(network, tmp_path / "model.onnx"), tmp_path / "imported.yaml")
    again = netspec.load(tmp_path / "imported.yaml")
    alpha = network.layers[0].spec.alpha
    assert [(layer.name, layer.type, getattr(layer.spec, "activation", None)) for layer in again.layers[:3]] == [
        ("conv", "conv2d", activation),
        ("norm", "batchnorm", activation),
        ("act", "activation", activation),
    ]
    assert all(layer.spec.alpha == alpha for layer in again.layers[:3])
    x = np.random.default_rng(7).normal(0, 3, size=(5, 3, 5, 6)).astype(np.float32)
    np.testing.assert_array_equal(again.forward(x), network.forward(x))
