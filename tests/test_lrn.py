"""The lrn layer: PyTorch's LocalResponseNorm in a spec, its gradients, ONNX export and import, its errors."""

from __future__ import annotations

import numpy as np
import pytest

import netspec
from netspec.layers import KINDS
from netspec.layers.lrn import LRN

from conftest import where

torch = pytest.importorskip("torch")

SPEC = """\
netspec: 1
classes: [a, b, c]
input: {image: {width: 6, height: 5, color: rgb}}
dtype: DTYPE
layers:
  - {name: conv1, type: conv2d, filters: 6, kernel: 3, activation: relu}
  - {name: norm1, type: lrn, size: 5, alpha: 0.5, beta: 0.7, k: 2}
  - {name: norm2, type: lrn, size: 2, alpha: 0.3}
  - {type: flatten}
  - {name: out, type: dense, neurons: 3, activation: softmax}
"""


def run(layer, x, train=False):
    return KINDS["lrn"].forward(layer, {}, [x], train)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("shape", [(1, 3, 4, 5), (3, 7, 2, 3)], ids=["batch1", "batch3"])
def test_lrn_and_its_gradient_are_pytorchs(size, shape):
    layer = LRN(size=size, alpha=0.3, beta=0.6, k=1.3)
    rng = np.random.default_rng(size)
    x, g = rng.normal(size=shape), rng.normal(size=shape)
    y, backprop = run(layer, x)
    xt = torch.tensor(x, requires_grad=True)
    expected = torch.nn.LocalResponseNorm(size, alpha=0.3, beta=0.6, k=1.3)(xt)
    (expected * torch.from_numpy(g)).sum().backward()
    np.testing.assert_allclose(y, expected.detach().numpy(), rtol=1e-12, atol=0)
    ([dx], grads) = backprop(g)
    assert grads == {}
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_lrn_defaults_are_pytorchs():
    layer = LRN(size=3)
    assert (layer.alpha, layer.beta, layer.k) == (1e-4, 0.75, 1.0)
    x = np.random.default_rng(0).normal(size=(2, 4, 3, 3)) * 30  # large enough for the defaults to matter
    expected = torch.nn.LocalResponseNorm(3)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(run(layer, x)[0], expected, rtol=1e-12)
    assert np.abs(expected - x).max() > 1  # the layer did something


def test_a_float32_network_runs_lrn_as_pytorch_and_trains(write_spec):
    network = netspec.load(write_spec(SPEC.replace("DTYPE", "float32")))
    assert [layer.output_shape for layer in network.layers[:3]] == [(6, 3, 4)] * 3
    x = np.random.default_rng(0).normal(size=(4, 3, 5, 6)).astype(np.float32)
    conv = network.layers[0]
    with torch.no_grad():
        h = torch.relu(
            torch.nn.functional.conv2d(
                torch.from_numpy(x), torch.from_numpy(conv.params["weights"]), torch.from_numpy(conv.params["bias"])
            )
        )
        h = torch.nn.functional.local_response_norm(h, 5, alpha=0.5, beta=0.7, k=2.0)
        h = torch.nn.functional.local_response_norm(h, 2, alpha=0.3).flatten(1)
        out = network.layers[-1].params
        expected = torch.softmax(h @ torch.from_numpy(out["weights"]).T + torch.from_numpy(out["bias"]), dim=1)
    np.testing.assert_allclose(network.forward(x), expected.numpy(), rtol=1e-5, atol=1e-7)
    before = conv.params["weights"].copy()
    network.fit(x, [0, 1, 2, 0], epochs=1, batch_size=4, val_split=0)
    assert np.abs(conv.params["weights"] - before).max() > 0  # the gradient went back through both lrn layers


def test_gradients_through_a_float64_network_are_autograds(write_spec):
    network = netspec.load(write_spec(SPEC.replace("DTYPE", "float64").replace(", activation: softmax", "")))
    rng = np.random.default_rng(1)
    x, g = rng.normal(size=(3, 3, 5, 6)), rng.normal(size=(3, 3))
    y, backward = network.forward_with_backprop(x)
    dx, grads = backward(g)
    xt = torch.tensor(x, requires_grad=True)
    conv, out = network.layers[0].params, network.layers[-1].params
    w, b = (torch.tensor(conv[k], requires_grad=True) for k in ("weights", "bias"))
    h = torch.relu(torch.nn.functional.conv2d(xt, w, b))
    h = torch.nn.functional.local_response_norm(h, 5, alpha=0.5, beta=0.7, k=2.0)
    h = torch.nn.functional.local_response_norm(h, 2, alpha=0.3).flatten(1)
    expected = h @ torch.from_numpy(out["weights"]).T + torch.from_numpy(out["bias"])
    (expected * torch.from_numpy(g)).sum().backward()
    np.testing.assert_allclose(y, expected.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(grads[0]["weights"], w.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_lrn_is_exported_for_onnxruntime_and_odd_sizes_import_back(write_spec, tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from netspec.interop.export import export
    from netspec.interop.importer import import_model

    spec = write_spec(SPEC.replace("DTYPE", "float32"))
    network = netspec.load(spec)
    path = export(network, tmp_path / "lrn.onnx")
    ops = [node.op_type for node in onnx.load(str(path)).graph.node]
    # size 5 is ONNX's LRN; size 2 (whose window ONNX places the other way, and onnxruntime refuses) its arithmetic.
    assert ops == ["Conv", "Relu", "LRN", "Mul", "Conv", "Add", "Pow", "Div", "Flatten", "Gemm", "Softmax"]
    x = np.random.default_rng(2).normal(size=(5, 3, 5, 6)).astype(np.float32) * 3
    (scores,) = ort.InferenceSession(str(path)).run(None, {"input": x})
    np.testing.assert_allclose(scores, network.forward(x), rtol=1e-5, atol=1e-7)

    odd = write_spec(
        SPEC.replace("DTYPE", "float32").replace("  - {name: norm2, type: lrn, size: 2, alpha: 0.3}\n", "")
    )
    back, arrays = import_model(export(netspec.load(odd), tmp_path / "odd.onnx"), tmp_path / "back.yaml")
    imported = netspec.load(back)
    assert imported.layers[1].spec == LRN(name="norm1", size=5, alpha=0.5, beta=0.7, k=2.0)
    np.testing.assert_array_equal(imported.forward(x), netspec.load(odd).forward(x))


def _lrn_model(size: int, alpha=0.0005, bias=2.0):
    from onnx import TensorProto, helper

    node = helper.make_node("LRN", ["x"], ["y"], name="n2", size=size, alpha=alpha, beta=0.75, bias=bias)
    flat = helper.make_node("Flatten", ["y"], ["scores"], name="flat")
    graph = helper.make_graph(
        [node, flat],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 2, 2])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 12])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_an_onnx_lrn_imports_with_the_decimals_it_was_written_with(tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from netspec.interop.importer import import_model

    path = tmp_path / "zf.onnx"
    onnx.save(_lrn_model(5), str(path))  # ZFNet's: alpha 0.0005 (stored as float32) and bias 2
    spec, _ = import_model(path, tmp_path / "zf.yaml")
    network = netspec.load(spec)
    assert network.layers[0].spec == LRN(name="n2", size=5, alpha=0.0005, beta=0.75, k=2.0)
    x = np.random.default_rng(3).normal(size=(2, 3, 2, 2)).astype(np.float32) * 40
    (expected,) = ort.InferenceSession(str(path)).run(None, {"x": x})
    np.testing.assert_allclose(network.forward(x), expected, rtol=1e-5)


def test_an_even_onnx_lrn_is_refused_for_its_window(tmp_path):
    onnx = pytest.importorskip("onnx")
    from netspec.errors import SpecError
    from netspec.interop.importer import import_model

    path = tmp_path / "even.onnx"
    onnx.save(_lrn_model(4), str(path))
    with pytest.raises(SpecError) as caught:
        import_model(path, tmp_path / "even.yaml")
    assert str(caught.value) == (
        f"{path}: NS503 node 'n2' (LRN): an LRN of even size 4 sums one channel more after each channel than "
        "before it; netspec's lrn (PyTorch's) sums one more before, so only odd sizes map"
    )
    assert not (tmp_path / "even.yaml").exists()


@pytest.mark.parametrize(
    "change, needle, part, message",
    [
        ("size: 0", "size: 0", "0", "NS104 layers[1].size: must be at least 1, got 0"),
        ("size: 5, k: 0", "k: 0", "0", "NS104 layers[1].k: must be above 0, got 0"),
        ("size: 5, alpha: -1", "alpha: -1", "-1", "NS104 layers[1].alpha: must be at least 0, got -1"),
        (
            "alpha: 0.5",
            "{name: norm1",
            None,
            "NS102 layers[1].size: missing required key 'size' (channels in each window: size // 2 before the "
            "channel, the channel, (size - 1) // 2 after)",
        ),
    ],
)
def test_bad_lrn_settings_are_located(problems, change, needle, part, message):
    text = SPEC.replace("size: 5, alpha: 0.5, beta: 0.7, k: 2", change).replace("DTYPE", "float32")
    assert problems(text) == [f"{where(text, needle, part)}: {message}"]


def test_lrn_needs_an_image(problems):
    text = (
        "netspec: 1\nclasses: [a, b]\ninput: {features: 4}\nlayers:\n"
        "  - {name: norm, type: lrn, size: 3}\n  - {type: dense, neurons: 2}\n"
    )
    assert problems(text) == [
        f"{where(text, '{name: norm')}: NS126 layers[0]: layer norm: needs an image-shaped input (channels, height, "
        "width), but gets 4 numbers from the input; image layers go before any flatten, on an image input"
    ]
