"""The channel_shuffle layer: PyTorch's ChannelShuffle in a spec, its gradient, ONNX export and import, its errors."""

from __future__ import annotations

import numpy as np
import pytest

import netspec
from netspec.layers import KINDS
from netspec.layers.channel_shuffle import ChannelShuffle

from conftest import where

torch = pytest.importorskip("torch")

SPEC = """\
netspec: 1
classes: [a, b]
input: {image: {width: 5, height: 4, color: rgb}}
dtype: DTYPE
layers:
  - {name: conv1, type: conv2d, filters: 6, kernel: 3, padding: same, activation: relu}
  - {name: shuffle, type: channel_shuffle, groups: 3}
  - {name: conv2, type: conv2d, filters: 4, kernel: 2, activation: tanh}
  - {type: flatten}
  - {name: out, type: dense, neurons: 2, activation: softmax}
"""


def run(layer, x):
    return KINDS["channel_shuffle"].forward(layer, {}, [x])


def test_channels_are_dealt_out_from_each_group_in_turn():
    x = np.arange(6.0).reshape(1, 6, 1, 1)
    y, backprop = run(ChannelShuffle(groups=2), x)
    assert y.ravel().tolist() == [0, 3, 1, 4, 2, 5]  # groups (0 1 2) and (3 4 5)
    ([dx], _) = backprop(y)
    assert dx.ravel().tolist() == [0, 1, 2, 3, 4, 5]  # the gradient goes back where each value came from


@pytest.mark.parametrize("groups, channels", [(2, 6), (3, 6), (3, 9), (2, 2), (1, 5)])
@pytest.mark.parametrize("batch", [1, 3])
def test_channel_shuffle_and_its_gradient_are_pytorchs(groups, channels, batch):
    rng = np.random.default_rng(groups * channels + batch)
    shape = (batch, channels, 3, 5)
    x, g = rng.normal(size=shape), rng.normal(size=shape)
    y, backprop = run(ChannelShuffle(groups=groups), x)
    xt = torch.tensor(x, requires_grad=True)
    expected = torch.nn.ChannelShuffle(groups)(xt)
    (expected * torch.from_numpy(g)).sum().backward()
    np.testing.assert_allclose(y, expected.detach().numpy(), rtol=1e-12, atol=0)
    ([dx], grads) = backprop(g)
    assert grads == {}
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=0)


def test_a_spec_with_a_shuffle_runs_as_pytorch_and_its_gradients_are_autograds(write_spec):
    network = netspec.load(write_spec(SPEC.replace("DTYPE", "float64")))
    assert [layer.output_shape for layer in network.layers[:3]] == [(6, 4, 5), (6, 4, 5), (4, 3, 4)]
    rng = np.random.default_rng(1)
    x, g = rng.normal(size=(3, 3, 4, 5)), rng.normal(size=(3, 2))
    y, backward = network.forward_with_backprop(x)
    dx, grads = backward(g)
    c1, c2, out = (network.layers[i].params for i in (0, 2, 4))
    xt = torch.tensor(x, requires_grad=True)
    w1 = torch.tensor(c1["weights"], requires_grad=True)
    h = torch.relu(torch.nn.functional.conv2d(xt, w1, torch.from_numpy(c1["bias"]), padding=1))
    h = torch.nn.ChannelShuffle(3)(h)
    h = torch.tanh(torch.nn.functional.conv2d(h, torch.from_numpy(c2["weights"]), torch.from_numpy(c2["bias"])))
    z = h.flatten(1) @ torch.from_numpy(out["weights"]).T + torch.from_numpy(out["bias"])
    expected = torch.softmax(z, dim=1)
    np.testing.assert_allclose(y, expected.detach().numpy(), rtol=1e-12)
    # The network's backprop starts from the scores' gradient (softmax included).
    (expected * torch.from_numpy(g)).sum().backward()
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(grads[0]["weights"], w1.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_a_spec_with_a_shuffle_trains(write_spec):
    network = netspec.load(write_spec(SPEC.replace("DTYPE", "float32")))
    x = np.random.default_rng(2).normal(size=(4, 3, 4, 5)).astype(np.float32)
    before = network.layers[0].params["weights"].copy()
    network.fit(x, [0, 1, 1, 0], epochs=1, batch_size=4, val_split=0)
    assert np.abs(network.layers[0].params["weights"] - before).max() > 0


def test_channel_shuffle_exports_for_onnxruntime_and_imports_back(write_spec, tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from netspec.interop.export import export
    from netspec.interop.importer import import_model

    network = netspec.load(write_spec(SPEC.replace("DTYPE", "float32")))
    path = export(network, tmp_path / "shuffle.onnx")
    nodes = onnx.load(str(path)).graph.node
    assert [node.op_type for node in nodes][2:5] == ["Reshape", "Transpose", "Reshape"]
    x = np.random.default_rng(3).normal(size=(5, 3, 4, 5)).astype(np.float32)
    (scores,) = ort.InferenceSession(str(path)).run(None, {"input": x})
    np.testing.assert_allclose(scores, network.forward(x), rtol=1e-5, atol=1e-7)
    back, _ = import_model(path, tmp_path / "back.yaml")
    imported = netspec.load(back)
    assert imported.layers[1].spec == ChannelShuffle(name="shuffle", groups=3)
    for mine, theirs in zip(network.layers, imported.layers):
        for key, array in mine.params.items():
            np.testing.assert_array_equal(theirs.params[key], array)
    np.testing.assert_array_equal(imported.forward(x), network.forward(x))


def _graph(first_shape, perm, second_shape, batch=1):
    """A 1×1 convolution to 6 channels, then ShuffleNet's pattern as Caffe2 exported it (the batch size written out)."""
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("Conv", ["x", "w"], ["r0"], name="conv"),
        helper.make_node("Reshape", ["r0", "s1"], ["r1"], name="n7"),
        helper.make_node("Transpose", ["r1"], ["r2"], name="n8", perm=perm),
        helper.make_node("Reshape", ["r2", "s2"], ["r3"], name="n9"),
        helper.make_node("Flatten", ["r3"], ["scores"], name="flat"),
    ]
    shapes = [numpy_helper.from_array(np.array(s, np.int64), n) for n, s in (("s1", first_shape), ("s2", second_shape))]
    weights = np.random.default_rng(5).normal(size=(6, 3, 1, 1)).astype(np.float32)
    shapes.append(numpy_helper.from_array(weights, "w"))
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 2, 3])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [batch, 36])],
        shapes,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize(
    "first, second",
    [([1, 3, 2, 2, 3], [1, 6, 2, 3]), ([0, 3, -1, 2, 3], [-1, 6, 2, 3]), ([0, 3, 0, 2, 3], [0, 6, 2, 3])],
    ids=["batch-written-out", "minus-one", "zeros-copy"],
)
def test_shufflenets_reshape_transpose_reshape_imports_as_a_channel_shuffle(tmp_path, first, second):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from netspec.interop.importer import import_model

    path = tmp_path / "shuffle.onnx"
    onnx.save(_graph(first, [0, 2, 1, 3, 4], second), str(path))
    spec, _ = import_model(path, tmp_path / "shuffle.yaml")
    network = netspec.load(spec)
    assert network.layers[1].spec == ChannelShuffle(name="n9", groups=3)
    x = np.random.default_rng(4).normal(size=(1, 3, 2, 3)).astype(np.float32)
    (expected,) = ort.InferenceSession(str(path)).run(None, {"x": x})
    np.testing.assert_allclose(network.forward(x), expected, rtol=1e-6)


def test_a_shuffle_pytorch_exported_with_constant_shapes_imports(tmp_path):
    pytest.importorskip("onnx")
    import warnings

    from netspec.interop.importer import import_model

    class Shuffle(torch.nn.Module):
        def forward(self, x):
            return x.view(-1, 3, 2, 4, 4).transpose(1, 2).reshape(-1, 6, 4, 4)

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 1), Shuffle(), torch.nn.Flatten()).eval()
    x = torch.randn(2, 3, 4, 4)
    path = tmp_path / "torch.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (x,), str(path), dynamo=False, opset_version=17, dynamic_axes={"x": {0: "batch"}}, input_names=["x"]
        )
    network = netspec.load(import_model(path, tmp_path / "torch.yaml")[0])
    assert [layer.type for layer in network.layers] == ["conv2d", "channel_shuffle", "flatten"]
    assert network.layers[1].spec.groups == 3
    with torch.no_grad():
        np.testing.assert_allclose(network.forward(x.numpy()), model(x).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "first, perm, second",
    [
        ([1, 3, 2, 2, 3], [0, 1, 2, 4, 3], [1, 6, 2, 3]),  # swaps height and width
        ([1, 3, 2, 2, 3], [0, 2, 1, 3, 4], [1, 2, 3, 2, 3]),  # stays in five axes
        ([1, 3, 2, 3, 2], [0, 2, 1, 3, 4], [1, 6, 2, 3]),  # mixes rows and columns
    ],
    ids=["other-perm", "no-way-back", "other-split"],
)
def test_other_reshapes_into_five_axes_are_refused_naming_the_pattern(tmp_path, first, perm, second):
    onnx = pytest.importorskip("onnx")
    from netspec.errors import SpecError
    from netspec.interop.importer import import_model

    path = tmp_path / "other.onnx"
    onnx.save(_graph(first, perm, second), str(path))
    with pytest.raises(SpecError) as caught:
        import_model(path, tmp_path / "other.yaml")
    assert str(caught.value) == (
        f"{path}: NS503 node 'n7' (Reshape): a Reshape of a (6, 2, 3) image to {first} is netspec's only as the "
        "first node of a channel shuffle: Reshape to (batch, groups, channels/groups, height, width), Transpose "
        "with perm (0, 2, 1, 3, 4), Reshape back to (batch, channels, height, width)"
    )


def test_groups_that_do_not_divide_the_channels_are_located(problems):
    text = SPEC.replace("DTYPE", "float32").replace("filters: 6, kernel: 3", "filters: 8, kernel: 3")
    assert problems(text) == [
        f"{where(text, 'groups: 3', '3')}: NS126 layers[1].groups: layer shuffle: groups 3 does not divide the 8 "
        "channels of the input from conv1; use one of 1, 2, 4, 8"
    ]
    text = SPEC.replace("DTYPE", "float32").replace("groups: 3", "groups: 0")
    assert problems(text) == [f"{where(text, 'groups: 0', '0')}: NS104 layers[1].groups: must be at least 1, got 0"]


def test_channel_shuffle_needs_an_image(problems):
    text = (
        "netspec: 1\nclasses: [a, b]\ninput: {features: 4}\nlayers:\n"
        "  - {name: mix, type: channel_shuffle, groups: 2}\n  - {type: dense, neurons: 2}\n"
    )
    assert problems(text) == [
        f"{where(text, '{name: mix')}: NS126 layers[0]: layer mix: needs an image-shaped input (channels, height, "
        "width), but gets 4 numbers from the input; image layers go before any flatten, on an image input"
    ]
