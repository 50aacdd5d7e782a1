"""`use_bias: false` on conv2d and dense: no bias array, counted, run, trained, saved and exported as PyTorch's bias=False."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

import netspec
from netspec.interop.export import export
from netspec.interop.importer import import_model
from netspec.layers import KINDS, LAYER_MODULES, Conv2D, Dense

from conftest import where

torch = pytest.importorskip("torch", reason="PyTorch is the reference (pip install -e '.[test]')")
F = torch.nn.functional

# (layer, PyTorch's padding, input shape): a plain, a grouped and a depthwise convolution, and a dense layer.
LAYERS = [
    (Conv2D(filters=4, kernel=3, padding=1, activation="relu", use_bias=False), 1, (3, 3, 6, 5)),
    (Conv2D(filters=6, kernel=[3, 2], groups=2, stride=2, use_bias=False), 0, (2, 4, 7, 6)),
    (Conv2D(filters=6, kernel=3, groups=3, padding=1, activation="tanh", use_bias=False), 1, (2, 3, 5, 5)),
    (Dense(neurons=5, activation="sigmoid", use_bias=False), None, (4, 7)),
]


@pytest.mark.parametrize("layer, padding, shape", LAYERS, ids=["conv", "grouped", "depthwise", "dense"])
def test_a_layer_without_bias_computes_and_learns_as_pytorch_without_bias(layer, padding, shape):
    rng = np.random.default_rng(0)
    x = rng.normal(size=shape)
    module = LAYER_MODULES[layer.type]
    weights_shape = module.param_shapes(layer, shape[1:])["weights"]
    assert set(module.param_shapes(layer, shape[1:])) == {"weights"}
    params = {"weights": rng.normal(size=weights_shape)}
    y, backprop = module.forward(layer, params, x)

    tx, tw = (torch.tensor(a, requires_grad=True) for a in (x, params["weights"]))
    if layer.type == "dense":
        z = F.linear(tx, tw, None)  # nn.Linear(bias=False)
    else:
        z = F.conv2d(tx, tw, None, stride=tuple(layer.stride), padding=padding, groups=layer.groups)
    theirs = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "linear": lambda t: t}[
        layer.activation
    ](z)
    np.testing.assert_allclose(y, theirs.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = rng.normal(size=y.shape)
    (theirs * torch.from_numpy(g)).sum().backward()
    dx, grads = backprop(g)
    assert set(grads) == {"weights"}  # nothing to learn for a bias that is not there
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grads["weights"], tw.grad.numpy(), rtol=1e-10, atol=1e-12)
    # The fast runner agrees.
    np.testing.assert_allclose(KINDS[layer.type].runner(layer, params)(x), y, rtol=1e-12, atol=1e-12)


SPEC = """\
netspec: 1
name: unbiased
classes: [a, b, c]
input:
  image: {width: 6, height: 6, color: rgb}
layers:
  - {name: conv, type: conv2d, filters: 8, kernel: 3, padding: 1, use_bias: false}
  - {name: norm, type: batchnorm, activation: relu}
  - {name: flat, type: flatten}
  - {name: out, type: dense, neurons: 3, use_bias: false}
"""


class Torch(torch.nn.Module):
    """The same network in PyTorch."""

    def __init__(self):
        super().__init__()
        self.conv, self.norm = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False), torch.nn.BatchNorm2d(8)
        self.out = torch.nn.Linear(8 * 6 * 6, 3, bias=False)

    def forward(self, x):
        return self.out(torch.flatten(torch.relu(self.norm(self.conv(x))), 1))


def test_parameters_without_bias_are_counted_as_by_hand_and_as_pytorch_counts_them(write_spec):
    network = netspec.load(write_spec(SPEC))
    summary = network.summary()
    # conv 8·3·3·3 = 216; norm: scale and shift 2·8 = 16 learned, mean and var 2·8 = 16 not; dense 3·288 = 864.
    assert [row.params for row in summary.rows[1:]] == [216, 32, 0, 864]
    assert (summary.params, summary.trainable_params) == (216 + 32 + 864, 216 + 16 + 864)
    assert summary.trainable_params == sum(p.numel() for p in Torch().parameters())
    assert [sorted(layer.params) for layer in network.layers] == [
        ["weights"],
        ["mean", "scale", "shift", "var"],
        [],
        ["weights"],
    ]
    assert "Trainable params: 1,096\n" in str(summary)


def test_a_network_without_biases_runs_trains_and_saves_as_pytorch(write_spec, tmp_path):
    network = netspec.load(write_spec(SPEC))
    module = Torch().eval()
    norm = network.layers[1].params
    norm["mean"][:], norm["var"][:] = np.linspace(-0.5, 0.5, 8), np.linspace(0.5, 2, 8)
    with torch.no_grad():
        module.conv.weight.copy_(torch.from_numpy(network.layers[0].params["weights"]))
        module.out.weight.copy_(torch.from_numpy(network.layers[3].params["weights"]))
        module.norm.running_mean.copy_(torch.from_numpy(norm["mean"]))
        module.norm.running_var.copy_(torch.from_numpy(norm["var"]))
    x = np.random.default_rng(1).normal(size=(4, 3, 6, 6)).astype(np.float32)
    with torch.no_grad():
        np.testing.assert_allclose(network.forward(x), module(torch.from_numpy(x)).numpy(), rtol=1e-4, atol=1e-5)

    network.fit(x, ["a", "b", "c", "a"], epochs=2, batch_size=2)
    assert sorted(network.layers[0].params) == ["weights"] and sorted(network.layers[3].params) == ["weights"]
    spec_path, arrays_path = network.save(tmp_path / "trained.yaml")
    assert sorted(np.load(arrays_path)) == [
        "conv.weights",
        "norm.mean",
        "norm.scale",
        "norm.shift",
        "norm.var",
        "out.weights",
    ]
    again = netspec.load(spec_path)
    assert [layer.spec.use_bias for layer in again.layers if layer.type in ("conv2d", "dense")] == [False, False]
    np.testing.assert_array_equal(again.forward(x), network.forward(x))


def test_a_weights_file_holding_a_bias_the_layer_does_not_have_is_refused(write_spec, tmp_path):
    np.savez(tmp_path / "arrays.npz", **{"out.bias": np.zeros(3, np.float32)})
    path = write_spec(SPEC.replace("layers:", "weights_file: arrays.npz\nlayers:"))
    with pytest.raises(netspec.SpecError) as caught:
        netspec.load(path)
    assert str(caught.value).replace(str(path), "spec.yaml") == (
        "spec.yaml:6:15: NS210 weights_file: arrays.npz holds 'out.bias', which matches no layer parameter; "
        "expected keys: conv.weights, norm.scale, norm.shift, norm.mean, norm.var, out.weights"
    )


@pytest.mark.parametrize(
    "layer, value, shown",
    [
        ("{name: conv, type: conv2d, filters: 8, kernel: 3, use_bias: false, bias: 0.1}", "0.1", "0.1"),
        (
            "{name: conv, type: conv2d, filters: 8, kernel: 3, bias: zeros, use_bias: false}",
            "zeros",
            "the initializer zeros",
        ),
        ("{name: out, type: dense, neurons: 3, use_bias: false, bias: [1, 2, 3]}", "[1, 2, 3]", "a list of 3 values"),
        ("{name: out, type: dense, neurons: 3, use_bias: false, bias: {file: b.npy}}", "{file", "the file b.npy"),
    ],
)
def test_a_bias_given_to_a_layer_without_bias_is_refused_where_it_is_written(problems, layer, value, shown):
    text = textwrap.dedent(f"""\
        netspec: 1
        name: unbiased
        classes: [a, b, c]
        input: {{features: 4}}
        layers:
          - {layer}
    """)
    found = problems(text)
    assert found == [
        f"{where(text, value)}: NS125 layers[0].bias: the layer has no bias (use_bias is false), but bias is given "
        f"({shown}); remove bias, or set use_bias: true"
    ]


def test_use_bias_true_is_the_default_and_a_bias_with_it_is_fine(problems):
    text = "netspec: 1\nname: n\nclasses: [a, b]\ninput: {features: 4}\nlayers:\n  - {type: dense, neurons: 2, bias: 1, use_bias: true}\n"
    assert problems(text) == []
    assert Dense(neurons=2).use_bias and Conv2D(filters=2, kernel=1).use_bias


def test_export_writes_conv_and_gemm_without_a_bias_input_and_imports_back(write_spec, tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    network = netspec.load(write_spec(SPEC))
    path = tmp_path / "unbiased.onnx"
    export(network, path)
    graph = onnx.load(str(path)).graph
    assert [list(node.input) for node in graph.node if node.op_type in ("Conv", "Gemm")] == [
        ["input", "conv.weights"],
        ["flat", "out.weights"],
    ]
    x = np.random.default_rng(2).normal(size=(3, 3, 6, 6)).astype(np.float32)
    session = ort.InferenceSession(str(path))
    np.testing.assert_allclose(session.run(None, {"input": x})[0], network.forward(x), rtol=1e-5, atol=1e-6)
    spec_path, _ = import_model(path, tmp_path / "again.yaml")
    again = netspec.load(spec_path)
    assert [(layer.name, sorted(layer.params)) for layer in again.layers if layer.type != "batchnorm"] == [
        ("conv", ["weights"]),
        ("flat", []),
        ("out", ["weights"]),
    ]
    assert again.summary().trainable_params == network.summary().trainable_params
    np.testing.assert_allclose(again.forward(x), network.forward(x), rtol=1e-6, atol=1e-7)


def test_a_neuron_without_bias_is_drawn_without_one(write_spec):
    pytest.importorskip("matplotlib")
    from netspec.pictures import neuron

    text = (
        "netspec: 1\nclasses: [a, b]\ninput: {features: 1}\nlayers:\n"
        "  - {name: n, type: dense, neurons: 2, activation: tanh, weights: [[-0.5], [1]], use_bias: false}\n"
    )
    (ax,) = neuron.draw(netspec.load(write_spec(text)), "n:0").axes
    assert ax.get_title().endswith("neuron 0 of n (dense, tanh), no bias")
    assert ax.get_legend().get_texts()[0].get_text() == "Weight·Input = −0.5·x0"
