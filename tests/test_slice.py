"""The slice layer: channels (or features) [start, stop) in a spec, its gradient, ONNX Slice both ways, its errors."""

from __future__ import annotations

import numpy as np
import pytest

import netspec
from netspec.layers import KINDS
from netspec.layers.slices import Slice

from conftest import where

torch = pytest.importorskip("torch")

SPEC = """\
netspec: 1
classes: [a, b]
input: {image: {width: 5, height: 4, color: rgb}}
dtype: DTYPE
layers:
  - {name: conv1, type: conv2d, filters: 6, kernel: 3, padding: same, activation: relu}
  - {name: half, type: slice, start: 2, stop: 5}
  - {name: conv2, type: conv2d, filters: 4, kernel: 2, activation: tanh}
  - {type: flatten}
  - {name: out, type: dense, neurons: 2, activation: softmax}
"""
VECTORS = """\
netspec: 1
classes: [a, b]
input: {features: 3}
dtype: float64
layers:
  - {name: hidden, type: dense, neurons: 5, activation: tanh}
  - {name: part, type: slice, start: 1}
  - {name: out, type: dense, neurons: 2}
"""


def run(layer, x):
    return KINDS["slice"].forward(layer, {}, [x])


@pytest.mark.parametrize("start, stop", [(0, 1), (6, 7), (0, 7), (2, 5), (3, None), (0, None)], ids=lambda v: str(v))
@pytest.mark.parametrize(
    "shape", [(1, 7, 3, 2), (3, 7, 2, 3), (1, 7), (3, 7)], ids=["image1", "image3", "vec1", "vec3"]
)
def test_slice_and_its_gradient_are_pytorchs(start, stop, shape):
    layer = Slice(start=start, stop=stop)
    rng = np.random.default_rng(start)
    x = rng.normal(size=shape)
    y, backprop = run(layer, x)
    xt = torch.tensor(x, requires_grad=True)
    expected = xt[:, start:stop]
    assert KINDS["slice"].output_shape(layer, [shape[1:]]) == tuple(expected.shape[1:])
    g = rng.normal(size=expected.shape)
    (expected * torch.from_numpy(g)).sum().backward()
    np.testing.assert_allclose(y, expected.detach().numpy(), rtol=1e-12, atol=0)
    ([dx], grads) = backprop(g)
    assert grads == {} and dx.shape == x.shape
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=0)  # zeros outside the range
    assert y.flags.c_contiguous


def test_a_spec_with_a_slice_runs_as_pytorch_and_its_gradients_are_autograds(write_spec):
    network = netspec.load(write_spec(SPEC.replace("DTYPE", "float64")))
    assert [layer.output_shape for layer in network.layers[:3]] == [(6, 4, 5), (3, 4, 5), (4, 3, 4)]
    assert network.layers[2].params["weights"].shape == (4, 3, 2, 2)
    rng = np.random.default_rng(1)
    x, g = rng.normal(size=(3, 3, 4, 5)), rng.normal(size=(3, 2))
    y, backward = network.forward_with_backprop(x)
    dx, grads = backward(g)
    c1, c2, out = (network.layers[i].params for i in (0, 2, 4))
    xt = torch.tensor(x, requires_grad=True)
    w1 = torch.tensor(c1["weights"], requires_grad=True)
    h = torch.relu(torch.nn.functional.conv2d(xt, w1, torch.from_numpy(c1["bias"]), padding=1))[:, 2:5]
    h = torch.tanh(torch.nn.functional.conv2d(h, torch.from_numpy(c2["weights"]), torch.from_numpy(c2["bias"])))
    z = h.flatten(1) @ torch.from_numpy(out["weights"]).T + torch.from_numpy(out["bias"])
    expected = torch.softmax(z, dim=1)
    (expected * torch.from_numpy(g)).sum().backward()
    np.testing.assert_allclose(y, expected.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(grads[0]["weights"], w1.grad.numpy(), rtol=1e-10, atol=1e-14)
    # Filters 0, 1 and 5 of conv1 reach nothing: their gradient is 0 (and that of 2..4 is not).
    assert not grads[0]["weights"][[0, 1, 5]].any() and grads[0]["weights"][2:5].any()


def test_a_slice_of_features_trains(write_spec):
    network = netspec.load(write_spec(VECTORS))
    assert [layer.output_shape for layer in network.layers] == [(5,), (4,), (2,)]
    x = np.random.default_rng(2).normal(size=(6, 3))
    hidden = network.layers[0].params
    expected = np.tanh(x @ hidden["weights"].T + hidden["bias"])[:, 1:] @ network.layers[2].params["weights"].T
    np.testing.assert_allclose(network.forward(x), expected + network.layers[2].params["bias"], rtol=1e-12)
    before = hidden["weights"].copy()
    network.fit(x, [0, 1, 0, 1, 1, 0], epochs=1, batch_size=6, val_split=0)
    assert np.abs(hidden["weights"][1:] - before[1:]).max() > 0
    np.testing.assert_array_equal(hidden["weights"][0], before[0])  # neuron 0 is sliced away: it learns nothing


@pytest.mark.parametrize("spec", [SPEC.replace("DTYPE", "float32"), VECTORS.replace("float64", "float32")])
def test_slice_exports_as_onnx_slice_for_onnxruntime_and_imports_back(write_spec, tmp_path, spec):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from netspec.interop.export import export
    from netspec.interop.importer import import_model

    network = netspec.load(write_spec(spec))
    path = export(network, tmp_path / "slice.onnx")
    assert "Slice" in [node.op_type for node in onnx.load(str(path)).graph.node]
    x = np.random.default_rng(3).normal(size=(5, *network.input_shape)).astype(np.float32)
    (scores,) = ort.InferenceSession(str(path)).run(None, {"input": x})
    np.testing.assert_allclose(scores, network.forward(x), rtol=1e-5, atol=1e-7)
    imported = netspec.load(import_model(path, tmp_path / "back.yaml")[0])
    sliced = network.layers[1].spec
    stop = sliced.stop or network.layers[1].input_shape[0]  # import writes the stop out
    assert imported.layers[1].spec == Slice(name=sliced.name, start=sliced.start, stop=stop)
    np.testing.assert_array_equal(imported.forward(x), network.forward(x))


def _slice_graph(starts, ends, axes=None, steps=None, opset=17):
    """A 1×1 convolution to 6 channels of a (batch, 3, 2, 3) image, one Slice, a Flatten."""
    from onnx import TensorProto, helper, numpy_helper

    constants = {"w": np.random.default_rng(5).normal(size=(6, 3, 1, 1)).astype(np.float32)}
    if opset < 10:
        attributes = {"starts": starts, "ends": ends} | ({"axes": axes} if axes is not None else {})
        node = helper.make_node("Slice", ["c"], ["s"], name="cut", **attributes)
    else:
        given = {"starts": starts, "ends": ends, "axes": axes, "steps": steps}
        constants |= {key: np.array(value, np.int64) for key, value in given.items() if value is not None}
        node = helper.make_node("Slice", ["c", *(key for key in given if key in constants)], ["s"], name="cut")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"), node, helper.make_node("Flatten", ["s"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", None])],
        [numpy_helper.from_array(array, name) for name, array in constants.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


@pytest.mark.parametrize(
    "slicing, taken",
    [
        ({"starts": [2], "ends": [5], "axes": [1]}, (2, 5)),
        ({"starts": [-2], "ends": [2**63 - 1], "axes": [-3]}, (4, 6)),  # from the end, as PyTorch's x[:, -2:]
        ({"starts": [0, 1], "ends": [2**63 - 1, 4], "axes": [0, 1], "steps": [1, 1]}, (1, 4)),
        ({"starts": [0, 0, 0], "ends": [9, 2, 3], "axes": [1, 2, 3]}, (0, 6)),  # every axis whole
        ({"starts": [1], "ends": [3], "axes": [1], "opset": 9}, (1, 3)),  # attributes, before opset 10
    ],
    ids=["plain", "negative", "batch-whole", "all-whole", "opset9"],
)
def test_an_onnx_slice_of_channels_imports(tmp_path, slicing, taken):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from netspec.interop.importer import import_model

    path = tmp_path / "slice.onnx"
    onnx.save(_slice_graph(**slicing), str(path))
    network = netspec.load(import_model(path, tmp_path / "slice.yaml")[0])
    assert network.layers[1].spec == Slice(name="cut", start=taken[0], stop=taken[1])
    x = np.random.default_rng(6).normal(size=(2, 3, 2, 3)).astype(np.float32)
    (expected,) = ort.InferenceSession(str(path)).run(None, {"x": x})
    np.testing.assert_allclose(network.forward(x), expected, rtol=1e-6)


@pytest.mark.parametrize(
    "slicing, why",
    [
        (
            {"starts": [0], "ends": [6], "axes": [1], "steps": [2]},
            "a Slice with step 2; netspec's slice takes every channel from start to stop",
        ),
        (
            {"starts": [0], "ends": [1], "axes": [2]},
            "a Slice along axis 2 of a tensor of shape (batch, 6, 2, 3); "
            "netspec's slice takes channels (or features of a vector), axis 1",
        ),
        ({"starts": [4], "ends": [2], "axes": [1]}, "a Slice of axis 1 from 4 to 2 of 6 takes nothing"),
    ],
    ids=["step", "other-axis", "empty"],
)
def test_slices_netspec_cannot_take_are_refused(tmp_path, slicing, why):
    onnx = pytest.importorskip("onnx")
    from netspec.errors import SpecError
    from netspec.interop.importer import import_model

    path = tmp_path / "cut.onnx"
    onnx.save(_slice_graph(**slicing), str(path))
    with pytest.raises(SpecError) as caught:
        import_model(path, tmp_path / "cut.yaml")
    assert str(caught.value) == f"{path}: NS503 node 'cut' (Slice): {why}"


def test_a_slice_pytorch_exported_imports(tmp_path):
    pytest.importorskip("onnx")
    import warnings

    from netspec.interop.importer import import_model

    class Half(torch.nn.Module):
        def forward(self, x):
            return x[:, 3:]

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 1), Half(), torch.nn.Flatten()).eval()
    x = torch.randn(2, 3, 4, 4)
    path = tmp_path / "torch.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (x,), str(path), dynamo=False, opset_version=17, dynamic_axes={"x": {0: "batch"}}, input_names=["x"]
        )
    network = netspec.load(import_model(path, tmp_path / "torch.yaml")[0])
    assert [layer.type for layer in network.layers] == ["conv2d", "slice", "flatten"]
    assert (network.layers[1].spec.start, network.layers[1].spec.stop) == (3, 6)
    with torch.no_grad():
        np.testing.assert_allclose(network.forward(x.numpy()), model(x).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "change, needle, part, message",
    [
        (
            "start: 2, stop: 2",
            "stop: 2",
            "2",
            "NS104 layers[1].stop: stop 2 is not after start 2, so the slice would be empty; give a stop above 2 "
            "(it is the first channel not taken)",
        ),
        (
            "start: 2, stop: 7",
            "stop: 7",
            "7",
            "NS126 layers[1].stop: layer half: stop 7 is past the 6 channels of the input from conv1; give a stop "
            "of at most 6",
        ),
        (
            "start: 6",
            "start: 6",
            "6",
            "NS126 layers[1].start: layer half: start 6 is past the last of the 6 channels of the input from conv1 "
            "(numbered from 0); give a start below 6",
        ),
        ("start: -1, stop: 5", "start: -1", "-1", "NS104 layers[1].start: must be at least 0, got -1"),
        ("start: 1, stop: 0", "stop: 0", "0", "NS104 layers[1].stop: must be at least 1, got 0"),
    ],
    ids=["empty", "stop-past", "start-past", "negative-start", "stop-zero"],
)
def test_slice_ranges_that_do_not_fit_are_located(problems, change, needle, part, message):
    text = SPEC.replace("DTYPE", "float32").replace("start: 2, stop: 5", change)
    assert problems(text) == [f"{where(text, needle, part)}: {message}"]


def test_a_slice_of_features_past_the_end_says_features(problems):
    text = VECTORS.replace("start: 1}", "start: 1, stop: 9}")
    assert problems(text) == [
        f"{where(text, 'stop: 9', '9')}: NS126 layers[1].stop: layer part: stop 9 is past the 5 features of the "
        "input from hidden; give a stop of at most 5"
    ]
