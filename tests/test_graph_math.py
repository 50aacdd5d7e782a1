"""Graph networks compute what PyTorch computes: forward, gradients, training, attribution, memory held."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

import netspec
from netspec.explain import attribution
from netspec.graph import needs_input_grads
from netspec.spec import Spec

from conftest import forward_counting_arrays

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # the comparisons with PyTorch are skipped
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed (pip install -e '.[test]')")

IMAGE = "input: {image: {width: 6, height: 6, color: rgb}}"

# conv → batchnorm → conv → batchnorm, the block's input added, relu (ResNet's basic block; the first
# relu sits on the first conv, as this format gives activations to conv layers).
RESIDUAL = f"""\
netspec: 1
classes: [a, b, c]
dtype: float64
{IMAGE}
layers:
  - {{name: stem, type: conv2d, filters: 4, kernel: 3, padding: same, activation: relu}}
  - {{name: conv1, type: conv2d, filters: 4, kernel: 3, padding: same, activation: relu}}
  - {{name: bn1, type: batchnorm}}
  - {{name: conv2, type: conv2d, filters: 4, kernel: 3, padding: same}}
  - {{name: bn2, type: batchnorm}}
  - {{name: block, type: add, inputs: [bn2, stem], activation: relu}}
  - {{name: pool, type: global_avgpool}}
  - {{name: out, type: dense, neurons: 3}}
"""

# Two dense layers with a shortcut around the second, and the input read again at the end.
SKIP_MLP = """\
netspec: 1
classes: [a, b, c]
dtype: float64
input: {features: 5}
layers:
  - {name: h1, type: dense, neurons: 6, activation: relu}
  - {name: h2, type: dense, neurons: 6, activation: tanh}
  - {name: sum, type: add, inputs: [h1, h2, h1]}
  - {name: h3, type: dense, neurons: 5, activation: leaky_relu, alpha: 0.2}
  - {name: again, type: add, inputs: [h3, input], activation: sigmoid}
  - {name: out, type: dense, neurons: 3}
"""

# Three branches from one stem, joined along channels (GoogLeNet's Inception module, smaller).
INCEPTION = f"""\
netspec: 1
classes: [a, b, c]
dtype: float64
{IMAGE}
layers:
  - {{name: stem, type: conv2d, filters: 4, kernel: 3, padding: same, activation: relu}}
  - {{name: b1, type: conv2d, filters: 2, kernel: 1, activation: relu}}
  - {{name: b2_reduce, type: conv2d, filters: 3, kernel: 1, activation: relu, inputs: stem}}
  - {{name: b2, type: conv2d, filters: 2, kernel: 3, padding: same, activation: relu}}
  - {{name: b3_pool, type: maxpool2d, size: 3, stride: 1, padding: 1, inputs: stem}}
  - {{name: b3, type: conv2d, filters: 2, kernel: 1}}
  - {{name: mixed, type: concat, inputs: [b1, b2, b3], activation: relu}}
  - {{name: pool, type: global_avgpool}}
  - {{name: out, type: dense, neurons: 3}}
"""

# Squeeze and excitation: each channel of the stem scaled by a gate computed from all channels' means.
SQUEEZE_EXCITE = f"""\
netspec: 1
classes: [a, b, c]
dtype: float64
{IMAGE}
layers:
  - {{name: stem, type: conv2d, filters: 4, kernel: 3, padding: same, activation: relu}}
  - {{name: squeeze, type: global_avgpool}}
  - {{name: reduce, type: dense, neurons: 2, activation: relu}}
  - {{name: expand, type: dense, neurons: 4, activation: sigmoid}}
  - {{name: gate, type: multiply, inputs: [stem, expand]}}
  - {{name: pool, type: global_avgpool}}
  - {{name: out, type: dense, neurons: 3}}
"""

# The same gate as a (C, 1, 1) map made by 1×1 convolutions, given to multiply first.
SQUEEZE_EXCITE_MAP = f"""\
netspec: 1
classes: [a, b, c]
dtype: float64
{IMAGE}
layers:
  - {{name: stem, type: conv2d, filters: 4, kernel: 3, padding: same, activation: relu}}
  - {{name: squeeze, type: avgpool2d, size: 6}}
  - {{name: reduce, type: conv2d, filters: 2, kernel: 1, activation: relu}}
  - {{name: expand, type: conv2d, filters: 4, kernel: 1, activation: sigmoid}}
  - {{name: gate, type: multiply, inputs: [expand, stem]}}
  - {{name: flat, type: flatten}}
  - {{name: out, type: dense, neurons: 3}}
"""

# Vectors joined along features: a dense layer's output beside the input it read.
CONCAT_MLP = """\
netspec: 1
classes: [a, b, c]
dtype: float64
input: {features: 5}
layers:
  - {name: h1, type: dense, neurons: 6, activation: relu}
  - {name: h2, type: dense, neurons: 4, activation: tanh, inputs: input}
  - {name: joined, type: concat, inputs: [h1, input, h2], activation: leaky_relu}
  - {name: gated, type: multiply, inputs: [joined, joined]}
  - {name: out, type: dense, neurons: 3}
"""

# MobileNet's depthwise-separable block: a 3×3 convolution per channel (groups = channels), then a
# 1×1 convolution that mixes the channels, each followed by a batch norm (relu6 after the first).
DEPTHWISE_SEPARABLE = f"""\
netspec: 1
classes: [a, b, c]
dtype: float64
{IMAGE}
layers:
  - {{name: stem, type: conv2d, filters: 4, kernel: 3, padding: same, activation: relu}}
  - {{name: depthwise, type: conv2d, filters: 4, kernel: 3, padding: same, groups: 4}}
  - {{name: bn1, type: batchnorm, activation: relu6}}
  - {{name: pointwise, type: conv2d, filters: 6, kernel: 1}}
  - {{name: bn2, type: batchnorm}}
  - {{name: pool, type: global_avgpool}}
  - {{name: out, type: dense, neurons: 3}}
"""

# ShuffleNet v2's basic unit: the channels split in two halves, the right one through 1×1 → depthwise
# 3×3 → 1×1, joined again with the left one untouched, and the channels of the two halves interleaved.
SHUFFLE_UNIT = f"""\
netspec: 1
classes: [a, b, c]
dtype: float64
{IMAGE}
layers:
  - {{name: stem, type: conv2d, filters: 6, kernel: 3, padding: same, activation: relu}}
  - {{name: left, type: slice, stop: 3}}
  - {{name: right, type: slice, start: 3, inputs: stem}}
  - {{name: conv1, type: conv2d, filters: 3, kernel: 1}}
  - {{name: bn1, type: batchnorm, activation: relu}}
  - {{name: depthwise, type: conv2d, filters: 3, kernel: 3, padding: same, groups: 3}}
  - {{name: bn2, type: batchnorm}}
  - {{name: conv2, type: conv2d, filters: 3, kernel: 1}}
  - {{name: bn3, type: batchnorm, activation: relu}}
  - {{name: joined, type: concat, inputs: [left, bn3]}}
  - {{name: shuffle, type: channel_shuffle, groups: 2}}
  - {{name: pool, type: global_avgpool}}
  - {{name: out, type: dense, neurons: 3}}
"""

GRAPHS = {
    "residual": RESIDUAL,
    "skip_mlp": SKIP_MLP,
    "inception": INCEPTION,
    "squeeze_excite": SQUEEZE_EXCITE,
    "squeeze_excite_map": SQUEEZE_EXCITE_MAP,
    "concat_mlp": CONCAT_MLP,
    "depthwise_separable": DEPTHWISE_SEPARABLE,
    "shuffle_unit": SHUFFLE_UNIT,
}


def network_of(text: str, seed: int = 0) -> netspec.Network:
    """The network a spec text describes, with random batch statistics (so that they matter)."""
    network = netspec.build(Spec.model_validate(yaml.safe_load(text)))
    rng = np.random.default_rng(seed)
    for layer in network.layers:
        for name, array in layer.params.items():
            if layer.type == "batchnorm":
                values = rng.uniform(0.5, 2, array.shape) if name == "var" else rng.normal(size=array.shape)
                np.copyto(array, values)
    return network


def batch_of(network: netspec.Network, size: int = 4, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(size, *network.input_shape))


ACTIVATE = {
    "linear": lambda z, layer: z,
    "relu": lambda z, layer: torch.relu(z),
    "relu6": lambda z, layer: F.relu6(z),
    "tanh": lambda z, layer: torch.tanh(z),
    "sigmoid": lambda z, layer: torch.sigmoid(z),
    "leaky_relu": lambda z, layer: F.leaky_relu(z, layer.alpha if layer.alpha is not None else 0.01),
    "softmax": lambda z, layer: torch.softmax(z, -1),
}


def torch_forward(network: netspec.Network, x: torch.Tensor, train: bool):
    """PyTorch's output for the network, read from its spec layer by layer, and the tensors to learn."""
    values, learned = {"input": x}, {}
    for node in network.layers:
        layer, ins = node.spec, [values[name] for name in node.inputs]
        p = {k: torch.tensor(v, requires_grad=k not in ("mean", "var")) for k, v in node.params.items()}
        learned.update({(node.name, k): t for k, t in p.items() if t.requires_grad})
        if layer.type == "dense":
            z = F.linear(ins[0].flatten(1), p["weights"], p["bias"])
        elif layer.type == "conv2d":  # stride 1 and an odd kernel here: `same` pads kernel // 2 on each side
            padding = {"same": layer.kernel[0] // 2, "valid": 0}.get(layer.padding, layer.padding)
            z = F.conv2d(ins[0], p["weights"], p["bias"], padding=padding, groups=layer.groups)
        elif layer.type == "batchnorm":
            z = F.batch_norm(ins[0], p["mean"], p["var"], p["scale"], p["shift"], train, layer.momentum, layer.epsilon)
        elif layer.type == "flatten":
            z = ins[0].flatten(1)
        elif layer.type == "global_avgpool":
            z = ins[0].mean(dim=(2, 3))
        elif layer.type == "maxpool2d":
            z = F.max_pool2d(ins[0], list(layer.size), list(layer.stride), padding=layer.padding)
        elif layer.type == "avgpool2d":
            z = F.avg_pool2d(ins[0], list(layer.size), list(layer.stride))
        elif layer.type == "slice":
            z = ins[0][:, layer.start : layer.stop]  # stop None: to the end, as in Python
        elif layer.type == "channel_shuffle":  # torchvision's ShuffleNet v2 channel_shuffle
            n, c, h, w = ins[0].shape
            z = ins[0].view(n, layer.groups, c // layer.groups, h, w).transpose(1, 2).reshape(n, c, h, w)
        elif layer.type == "add":
            z = sum(ins[1:], ins[0])
        elif layer.type == "concat":
            z = torch.cat(ins, dim=1)
        elif layer.type == "multiply":
            a, b = ins
            a, b = (a[:, :, None, None] if a.dim() < b.dim() else a), (b[:, :, None, None] if b.dim() < a.dim() else b)
            z = a * b
        else:
            raise AssertionError(f"no PyTorch form written for {layer.type}")
        values[node.name] = ACTIVATE[getattr(layer, "activation", "linear")](z, layer)
    return values[network.layers[-1].name], learned


@needs_torch
@pytest.mark.parametrize("train", [False, True], ids=["running", "training"])
@pytest.mark.parametrize("name", list(GRAPHS))
def test_forward_and_gradients_equal_pytorch(name, train):
    network = network_of(GRAPHS[name])
    x = batch_of(network)
    tx = torch.tensor(x, requires_grad=True)
    theirs, learned = torch_forward(network_of(GRAPHS[name]), tx, train)  # its own running statistics
    if not train:
        np.testing.assert_allclose(network.forward(x), theirs.detach().numpy(), rtol=1e-9, atol=1e-12)
    ours, backward = network.forward_with_backprop(x, train=train)
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-9, atol=1e-12)
    g = np.random.default_rng(2).normal(size=ours.shape)
    (theirs * torch.tensor(g)).sum().backward()
    dx, grads = backward(g)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-7, atol=1e-10)
    for i, layer in enumerate(network.layers):
        for param, gradient in grads[i].items():
            expected = learned[(layer.name, param)].grad.numpy()
            np.testing.assert_allclose(gradient, expected, rtol=1e-7, atol=1e-10, err_msg=f"{layer.name}.{param}")
        assert set(grads[i]) == {param for (owner, param) in learned if owner == layer.name}


def test_a_value_read_by_several_layers_gets_the_sum_of_their_gradients():
    # h1 is read twice by `sum` and once by h2: its gradient is three contributions (checked by hand
    # against finite differences of the whole network).
    network = network_of(SKIP_MLP)
    x = batch_of(network)
    out, backward = network.forward_with_backprop(x)
    g = np.random.default_rng(3).normal(size=out.shape)
    _, grads = backward(g)
    weights = network.layers[0].params["weights"]
    step, numeric = 1e-6, np.zeros_like(weights)
    for index in np.ndindex(weights.shape):
        saved = weights[index]
        weights[index] = saved + step
        up = (network.forward(x) * g).sum()
        weights[index] = saved - step
        down = (network.forward(x) * g).sum()
        weights[index] = saved
        numeric[index] = (up - down) / (2 * step)
    np.testing.assert_allclose(grads[0]["weights"], numeric, rtol=1e-6, atol=1e-8)


def test_layers_below_every_learning_layer_compute_no_input_gradient():
    text = """\
netspec: 1
classes: [a, b]
input: {image: {width: 4, height: 4, color: grayscale}}
layers:
  - {name: pool, type: maxpool2d, size: 2}
  - {name: other, type: avgpool2d, size: 2, inputs: input}
  - {name: both, type: add, inputs: [pool, other]}
  - {name: conv, type: conv2d, filters: 1, kernel: 1}
  - {name: late, type: add, inputs: [conv, both]}
  - {name: flat, type: flatten}
  - {name: out, type: dense, neurons: 2}
"""
    network = netspec.build(Spec.model_validate(yaml.safe_load(text)))
    # `late` reads conv (learning) and `both` (not): it needs input gradients; nothing above conv does.
    assert needs_input_grads(network.layers) == [False, False, False, False, True, True, True]
    out, backward = network.forward_with_backprop(np.ones((1, 1, 4, 4), dtype=np.float32))
    dx, grads = backward(np.ones_like(out), input_grads=needs_input_grads(network.layers))
    assert dx is None and set(grads[3]) == {"weights", "bias"}


def test_training_a_graph_spec_lowers_its_loss():
    network = network_of(SKIP_MLP.replace("dtype: float64", "dtype: float32"))
    rng = np.random.default_rng(4)
    x = rng.normal(size=(120, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int)
    history = network.fit(x, y, epochs=15, batch_size=16, val_split=0, learning_rate=0.01)
    losses = [epoch.loss for epoch in history.epochs]
    assert losses[-1] < 0.6 * losses[0]


def test_a_residual_spec_trains_with_batch_statistics_and_dropout_in_a_branch():
    text = RESIDUAL.replace("dtype: float64", "dtype: float32").replace(
        "  - {name: bn2, type: batchnorm}",
        "  - {name: bn2, type: batchnorm}\n  - {name: drop, type: dropout, rate: 0.2}",
    )
    text = text.replace("inputs: [bn2, stem]", "inputs: [drop, stem]")
    network = network_of(text)
    rng = np.random.default_rng(5)
    x = rng.normal(size=(60, 3, 6, 6)).astype(np.float32)
    y = (x[:, 0].mean(axis=(1, 2)) > 0).astype(int) + (x[:, 1].mean(axis=(1, 2)) > 0).astype(int)
    before = network.layers[2].params["mean"].copy()
    history = network.fit(x, y, epochs=12, batch_size=10, val_split=0, learning_rate=0.01)
    losses = [epoch.loss for epoch in history.epochs]
    assert losses[-1] < losses[0]
    assert not np.allclose(network.layers[2].params["mean"], before)  # bn1's running mean was updated


def test_dropout_in_a_branch_is_active_while_training_only():
    text = SKIP_MLP.replace("  - {name: sum,", "  - {name: drop, type: dropout, rate: 0.5}\n  - {name: sum,").replace(
        "inputs: [h1, h2, h1]", "inputs: [h1, drop, h1]"
    )
    network = network_of(text)
    x = batch_of(network, 8)
    running, _ = network.forward_with_backprop(x)
    np.testing.assert_allclose(running, network.forward(x), rtol=1e-12)
    same_branch_off = network_of(SKIP_MLP).forward(x)
    np.testing.assert_allclose(running, same_branch_off, rtol=1e-12)  # dropout running is the identity
    trained, _ = network.forward_with_backprop(x, train=True, rng=np.random.default_rng(0))
    assert not np.allclose(trained, running)


def test_attribution_of_a_graph_spec_equals_pytorch_gradient_times_input():
    network = network_of(SKIP_MLP)
    x = batch_of(network, 1)[0]
    found = attribution(network, x, 2)
    if torch is None:
        pytest.skip("PyTorch is not installed")
    tx = torch.tensor(x[None], requires_grad=True)
    out, _ = torch_forward(network, tx, train=False)
    out[0, 2].backward()
    np.testing.assert_allclose(found, (tx.grad * tx).detach().numpy()[0], rtol=1e-7, atol=1e-12)


def add_chain(blocks: int) -> str:
    """A long chain of add-skip blocks: h → dense → add [dense, h] → ..."""
    lines = ["  - {name: h0, type: dense, neurons: 8, activation: relu}"]
    for b in range(1, blocks + 1):
        lines.append(f"  - {{name: d{b}, type: dense, neurons: 8, activation: relu}}")
        lines.append(f"  - {{name: h{b}, type: add, inputs: [d{b}, h{b - 1}]}}")
    lines.append("  - {name: out, type: dense, neurons: 2}")
    return "netspec: 1\nclasses: [a, b]\ninput: {features: 8}\nlayers:\n" + "\n".join(lines) + "\n"


def test_a_forward_pass_holds_only_the_values_still_to_be_read():
    network = netspec.build(Spec.model_validate(yaml.safe_load(add_chain(30))))
    assert not network._chain
    x = np.ones((3, 8), dtype=np.float32)
    out, most = forward_counting_arrays(network, x)
    assert out.shape == (3, 2)
    # 61 layers run; at any moment at most the skip value, the block's dense output and the value
    # just made (plus the inputs being read) are alive, whatever the depth.
    assert most <= 3
    np.testing.assert_allclose(out, network.forward_with_backprop(x)[0], rtol=1e-6)


@pytest.mark.parametrize("name", list(GRAPHS))
def test_an_exported_graph_gives_the_same_scores_in_onnxruntime(name, tmp_path):
    onnx = pytest.importorskip("onnx", reason="pip install 'onnx>=1.16' 'onnxruntime>=1.18'")
    ort = pytest.importorskip("onnxruntime", reason="pip install 'onnx>=1.16' 'onnxruntime>=1.18'")
    from netspec.interop.export import export

    # float32: onnxruntime has no float64 convolution.
    network = network_of(GRAPHS[name].replace("dtype: float64", "dtype: float32"))
    path = export(network, tmp_path / f"{name}.onnx")
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    x = batch_of(network, 3).astype(np.float32)
    scores = ort.InferenceSession(str(path)).run(None, {"input": x})[0]
    np.testing.assert_allclose(scores, network.forward(x), rtol=1e-5, atol=1e-6)
    ops = {node.op_type for node in model.graph.node}
    merges = {"add": {"Add", "Sum"}, "concat": {"Concat"}, "multiply": {"Mul"}}
    used = {layer.type for layer in network.layers} & set(merges)
    assert all(ops & merges[kind] for kind in used)
    if name == "squeeze_excite":  # the (C,) gate is made (batch, C, 1, 1) before Mul
        assert "Unsqueeze" in ops
    if name == "shuffle_unit":  # the split is two Slices; the shuffle is Reshape, Transpose, Reshape
        assert [node.op_type for node in model.graph.node].count("Slice") == 2 and "Transpose" in ops
    if name in ("depthwise_separable", "shuffle_unit"):  # a depthwise conv keeps its groups as Conv's group
        groups = [
            a.i for node in model.graph.node if node.op_type == "Conv" for a in node.attribute if a.name == "group"
        ]
        assert max(groups) > 1


@pytest.mark.parametrize("name", list(GRAPHS))
def test_an_exported_graph_imports_back_as_the_same_graph(name, tmp_path):
    """Export, then import: the same layers reading the same layers, identical arrays and scores."""
    pytest.importorskip("onnx", reason="pip install 'onnx>=1.16' 'onnxruntime>=1.18'")
    ort = pytest.importorskip("onnxruntime", reason="pip install 'onnx>=1.16' 'onnxruntime>=1.18'")
    from netspec.interop.export import export
    from netspec.interop.importer import import_model

    network = network_of(GRAPHS[name].replace("dtype: float64", "dtype: float32"))
    path = export(network, tmp_path / f"{name}.onnx")
    spec, _ = import_model(path, tmp_path / f"{name}.yaml")
    back = netspec.load(spec)

    def described(layer):  # padding comes back in pixels ("same" is 1 for a 3×3 kernel), and no initializers
        return layer.name, layer.spec.type, layer.inputs, getattr(layer.spec, "activation", None)

    assert [described(layer) for layer in back.layers] == [described(layer) for layer in network.layers]
    for before, after in zip(network.layers, back.layers):
        assert before.params.keys() == after.params.keys()
        for key in before.params:
            np.testing.assert_array_equal(after.params[key], before.params[key], err_msg=f"{before.name}.{key}")
    x = batch_of(network, 3).astype(np.float32)
    np.testing.assert_array_equal(back.forward(x), network.forward(x))
    scores = ort.InferenceSession(str(path)).run(None, {"input": x})[0]
    np.testing.assert_allclose(back.forward(x), scores, rtol=1e-5, atol=1e-6)


def test_a_saved_graph_loads_as_the_same_network(tmp_path):
    network = network_of(INCEPTION)
    spec_path, _ = network.save(tmp_path / "inception.yaml")
    again = netspec.load(spec_path)
    assert [layer.inputs for layer in again.layers] == [layer.inputs for layer in network.layers]
    x = batch_of(network)
    np.testing.assert_array_equal(again.forward(x), network.forward(x))


def test_netspec_train_learns_a_graph_spec_ending_in_softmax(tmp_path):
    from click.testing import CliRunner

    from netspec.cli import main

    spec = tmp_path / "skip.yaml"
    spec.write_text(SKIP_MLP.replace("neurons: 3}", "neurons: 3, activation: softmax}"))
    rng = np.random.default_rng(6)
    x = rng.normal(size=(150, 5))
    np.savez(tmp_path / "data.npz", x=x, y=(x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int))
    out = tmp_path / "trained" / "skip.yaml"
    args = ["train", spec, tmp_path / "data.npz", "-o", out, "--epochs", "8", "--val-split", "0", "--seed", "1"]
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0 and "Traceback" not in result.output
    losses = [float(line.split("loss ")[1].split()[0]) for line in result.output.splitlines() if "loss " in line]
    assert len(losses) == 8 and losses[-1] < losses[0]
    trained = netspec.load(out)
    assert trained.layers[2].inputs == ["h1", "h2", "h1"] and trained.ends_in_softmax
