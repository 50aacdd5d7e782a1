"""Batch norms folded into the layer before them when running (netspec.fusion), adds written in place:
the fused forward against the plain one (training's forward_with_backprop, and the network run unfused),
against PyTorch, after training changed the arrays in place, and as `netspec summary` shows it."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

import netspec
from netspec import fusion
from netspec.spec import Spec

from conftest import forward_counting_arrays

torch = pytest.importorskip("torch")

TOLERANCE = {"float32": {"rtol": 1e-5, "atol": 1e-6}, "float64": {"rtol": 1e-12, "atol": 1e-13}}
"""Folding rounds differently from the plain path (s·w once, not (z − mean)·s·γ + β): float32 agrees to
about its 7th digit; atol for values near 0, of outputs around 1."""

IMAGE = "input: {image: {width: 9, height: 7, color: rgb}}\n"


def network_of(layers: str, dtype: str = "float32", head: str = IMAGE, seed: int = 0) -> netspec.Network:
    """A network of `layers` (YAML flow lines) with random arrays, batch norms' statistics included."""
    text = f"netspec: 1\nname: fused\nclasses: [a, b, c]\ndtype: {dtype}\n{head}layers:\n{layers}"
    network = netspec.build(Spec.model_validate(yaml.safe_load(text)))
    rng = np.random.default_rng(seed)
    for layer in network.layers:
        for name, array in layer.params.items():
            values = rng.uniform(0.3, 2.0, array.shape) if name in ("var", "scale") else rng.normal(0, 0.5, array.shape)
            np.copyto(array, values)
    return network


def batch_of(network: netspec.Network, size: int = 3, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(size, *network.input_shape)).astype(network.dtype)


def assert_runs_as_unfused(network: netspec.Network, x: np.ndarray) -> None:
    """The fused forward equals training's forward (each layer apart) and the network run unfused."""
    tolerance = TOLERANCE[str(network.dtype)]
    given = x.copy()
    fused = network.forward(x)
    np.testing.assert_array_equal(x, given)  # the input is never written into
    plain = network.forward_with_backprop(x)[0]
    unfused = netspec.Network(network.spec, network.layers, fuse=False).forward(x)
    np.testing.assert_allclose(fused, plain, **tolerance)
    np.testing.assert_allclose(fused, unfused, **tolerance)
    assert fused.dtype == network.dtype


def folded(network: netspec.Network) -> dict[str, str]:
    """Each folded batch norm's name → the name of the layer it runs inside."""
    layers = network.layers
    return {layers[norm].name: layers[into].name for norm, into in fusion.folds(layers).items()}


CONV_BN = (
    "  - {name: conv, type: conv2d, filters: 4, kernel: 3, stride: 2, padding: [1, 0], dilation: [1, 2]}\n"
    "  - {name: bn, type: batchnorm, epsilon: 0.001}\n"
    "  - {type: flatten}\n  - {name: out, type: dense, neurons: 3}\n"
)
CONV_NO_BIAS_BN_RELU = (
    "  - {name: conv, type: conv2d, filters: 6, kernel: 3, padding: 1, use_bias: false, groups: 3}\n"
    "  - {name: bn, type: batchnorm, activation: relu}\n"
    "  - {name: depthwise, type: conv2d, filters: 6, kernel: 3, stride: 2, groups: 6, use_bias: false}\n"
    "  - {name: bn2, type: batchnorm, activation: relu6}\n"
    "  - {type: global_avgpool}\n  - {name: out, type: dense, neurons: 3}\n"
)
FEATURES = "input: {features: 5}\n"
DENSE_BN = (
    "  - {name: hidden, type: dense, neurons: 7}\n  - {name: bn, type: batchnorm, activation: tanh}\n"
    "  - {name: out, type: dense, neurons: 3, use_bias: false}\n"
    "  - {name: bn_out, type: batchnorm, activation: softmax}\n"
)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    ("layers", "head", "expected"),
    [
        (CONV_BN, IMAGE, {"bn": "conv"}),
        (CONV_NO_BIAS_BN_RELU, IMAGE, {"bn": "conv", "bn2": "depthwise"}),
        (DENSE_BN, FEATURES, {"bn": "hidden", "bn_out": "out"}),
    ],
    ids=["conv-bn", "conv-without-bias-bn-relu", "dense-bn"],
)
@pytest.mark.parametrize("batch", [1, 7])
def test_a_folded_batch_norm_gives_the_unfused_output(layers, head, expected, dtype, batch):
    network = network_of(layers, dtype, head)
    assert folded(network) == expected
    assert_runs_as_unfused(network, batch_of(network, batch))


def test_a_batch_norm_whose_input_is_read_twice_is_not_folded():
    # conv's output is also read by the add: the batch norm cannot change what conv gives.
    network = network_of(
        "  - {name: conv, type: conv2d, filters: 3, kernel: 3, padding: 1}\n"
        "  - {name: bn, type: batchnorm, activation: relu}\n"
        "  - {name: sum, type: add, inputs: [bn, conv]}\n"
        "  - {type: global_avgpool}\n  - {name: out, type: dense, neurons: 3}\n",
        "float64",
    )
    assert folded(network) == {}
    assert_runs_as_unfused(network, batch_of(network))


def test_a_batch_norm_reading_the_input_runs_as_its_map_and_leaves_the_input_alone():
    network = network_of(
        "  - {name: first, type: batchnorm, activation: relu}\n  - {name: conv, type: conv2d, filters: 3, kernel: 3}\n"
        "  - {name: bn, type: batchnorm}\n  - {type: flatten}\n  - {name: out, type: dense, neurons: 3}\n",
        "float64",
    )
    assert folded(network) == {"bn": "conv"}
    assert_runs_as_unfused(network, batch_of(network))  # it checks that x is unchanged
    assert network.forward(batch_of(network, 0)).shape == (0, 3)


def test_a_batch_norm_after_an_activated_conv_is_not_folded():
    network = network_of(
        "  - {name: conv, type: conv2d, filters: 3, kernel: 3, activation: relu}\n  - {name: bn, type: batchnorm}\n"
        "  - {type: flatten}\n  - {name: out, type: dense, neurons: 3}\n",
        "float64",
    )
    assert folded(network) == {}
    assert_runs_as_unfused(network, batch_of(network))


RESIDUAL = (
    "  - {name: stem, type: conv2d, filters: 4, kernel: 3, padding: 1, use_bias: false}\n"
    "  - {name: stem_bn, type: batchnorm, activation: relu}\n"
    "  - {name: conv1, type: conv2d, filters: 4, kernel: 3, padding: 1, use_bias: false}\n"
    "  - {name: bn1, type: batchnorm, activation: relu}\n"
    "  - {name: conv2, type: conv2d, filters: 4, kernel: 3, padding: 1, use_bias: false}\n"
    "  - {name: bn2, type: batchnorm}\n"
    # stem_bn is read again by side, below: add1 must write its sum into bn2, not into stem_bn.
    "  - {name: add1, type: add, inputs: [stem_bn, bn2], activation: relu}\n"
    "  - {name: down, type: conv2d, filters: 8, kernel: 1, stride: 2, use_bias: false}\n"
    "  - {name: down_bn, type: batchnorm}\n"
    "  - {name: conv3, type: conv2d, inputs: add1, filters: 8, kernel: 3, stride: 2, padding: 1}\n"
    "  - {name: bn3, type: batchnorm}\n"
    "  - {name: add2, type: add, inputs: [bn3, down_bn], activation: relu}\n"
    "  - {name: side, type: conv2d, inputs: stem_bn, filters: 8, kernel: 1, stride: 2}\n"
    "  - {name: add3, type: add, inputs: [side, add2, side]}\n"
    "  - {type: global_avgpool}\n  - {name: out, type: dense, neurons: 3}\n"
)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_residual_graph_runs_fused_as_unfused(dtype):
    network = network_of(RESIDUAL, dtype)
    assert folded(network) == {
        "stem_bn": "stem",
        "bn1": "conv1",
        "bn2": "conv2",
        "down_bn": "down",
        "bn3": "conv3",
    }
    assert_runs_as_unfused(network, batch_of(network, 3))
    assert_runs_as_unfused(network, batch_of(network, 1, seed=2))


def test_an_add_reading_the_input_never_writes_into_it():
    network = network_of(
        "  - {name: conv, type: conv2d, filters: 3, kernel: 3, padding: 1}\n  - {name: bn, type: batchnorm}\n"
        "  - {name: sum, type: add, inputs: [input, bn], activation: relu}\n"
        "  - {type: flatten}\n  - {name: out, type: dense, neurons: 3}\n",
        "float64",
    )
    assert_runs_as_unfused(network, batch_of(network))  # it checks that x is unchanged


@pytest.mark.parametrize("layers", [CONV_NO_BIAS_BN_RELU, RESIDUAL], ids=["chain", "residual"])
def test_after_training_changed_the_arrays_in_place_the_fused_forward_follows(layers):
    network = network_of(layers, "float64")
    x = batch_of(network, 7)
    before = network.forward(x)  # folded now, from the arrays before training
    network.fit(x, ["a", "b", "c", "a", "b", "c", "a"], epochs=1, batch_size=4, learning_rate=0.05)
    after = network.forward(x)
    assert np.abs(after - before).max() > 1e-3  # training did change what the network gives
    assert_runs_as_unfused(network, x)
    # One Adam step by hand, as a custom loop would make it: the optimizer says the arrays changed.
    from netspec.train.optimizers import Adam

    params = [layer.params for layer in network.layers]
    out, backward = network.forward_with_backprop(x, train=True)
    grads = backward(np.ones_like(out))[1]
    network.forward(x)  # folded again, after the running statistics changed, before the step
    Adam(params, 0.05, 0.0).step(params, grads)
    assert_runs_as_unfused(network, x)


def test_the_best_epoch_kept_by_fit_is_what_the_fused_forward_runs():
    network = network_of(CONV_BN, "float64")
    x = batch_of(network, 7)
    start = network.forward(x)
    # At this rate every epoch measures worse than the start: fit measures each (folding its arrays),
    # then copies the starting arrays back in place.
    history = network.fit(x, list("abcabca"), epochs=3, optimizer="sgd", learning_rate=10, val_split=0.3)
    assert history.best_epoch == 0 and len(history.epochs) == 3
    assert_runs_as_unfused(network, x)
    np.testing.assert_allclose(network.forward(x), start, **TOLERANCE["float64"])


@pytest.mark.parametrize("batch", [1, 7])
def test_arrays_changed_by_hand_are_what_runs_next(batch):
    # Whichever way the fused step takes for the batch (fold the weights anew, or scale the layer's output),
    # it reads the arrays as they are: nothing to call after changing them.
    network = network_of(CONV_BN, "float64")
    conv = network.layers[0]
    # 108 weights against 32 output values an example: batch 1 scales the output, batch 7 folds the weights.
    assert (conv.params["weights"].size <= batch * np.prod(conv.output_shape)) == (batch == 7)
    x = batch_of(network, batch)
    network.forward(x)
    network.layers[0].params["weights"] *= 2
    network.layers[1].params["mean"] += 1
    assert_runs_as_unfused(network, x)
    network.layers[1].params["scale"][0] = -3.0
    assert_runs_as_unfused(network, x)


def test_a_pickled_network_runs_fused():
    import pickle

    network = network_of(RESIDUAL, "float64")
    again = pickle.loads(pickle.dumps(network))
    x = batch_of(network)
    np.testing.assert_allclose(again.forward(x), network.forward_with_backprop(x)[0], **TOLERANCE["float64"])
    unfused = pickle.loads(pickle.dumps(netspec.Network(network.spec, network.layers, fuse=False)))
    assert not unfused.fuse and len(unfused._steps) == len(network.layers)


def test_the_summary_says_which_batch_norms_are_folded():
    summary = network_of(RESIDUAL).summary()
    assert summary.folded == {name: "conv2d" for name in ("stem_bn", "bn1", "bn2", "down_bn", "bn3")}
    assert str(summary).splitlines()[-1] == "At inference, 5 batch norms are folded into the conv2d layers before them"
    mixed = network_of(CONV_BN.replace("neurons: 3}", "neurons: 3}\n  - {name: bn_out, type: batchnorm}")).summary()
    assert str(mixed).splitlines()[-1] == (
        "At inference, 2 batch norms are folded into the conv2d and dense layers before them"
    )
    one = str(network_of(CONV_BN).summary()).splitlines()
    assert one[-2:] == [
        "Input values per sample: 189",
        "At inference, 1 batch norm is folded into the conv2d layer before it",
    ]
    activated = CONV_BN.replace("kernel: 3,", "kernel: 3, activation: relu,")
    assert "At inference" not in str(network_of(activated).summary())


def test_an_imported_pytorch_resnet_runs_fused_as_pytorch(tmp_path):
    from onnx_graphs import imports_as_onnxruntime_runs, torch_export
    from test_onnx_names import tiny_resnet

    module, x = tiny_resnet()
    path = tmp_path / "resnet.onnx"
    torch_export(torch, module, x, path, dynamo=False, training=torch.onnx.TrainingMode.PRESERVE)
    network = imports_as_onnxruntime_runs(path, x.numpy())
    assert len(folded(network)) == 5  # every batch norm of the model, the stem's included
    with torch.no_grad():
        expected = module(x).numpy()
    np.testing.assert_allclose(network.forward(x.numpy()), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(network.forward(x[:1].numpy()), expected[:1], rtol=1e-5, atol=1e-6)


def test_a_fused_forward_holds_only_the_values_still_to_be_read():

    blocks = [
        "  - {name: h0, type: conv2d, filters: 4, kernel: 3, padding: 1, use_bias: false}\n"
        "  - {name: n0, type: batchnorm, activation: relu}\n"
    ]
    for b in range(1, 21):
        blocks.append(
            f"  - {{name: c{b}, type: conv2d, filters: 4, kernel: 3, padding: 1, use_bias: false}}\n"
            f"  - {{name: b{b}, type: batchnorm}}\n"
            f"  - {{name: n{b}, type: add, inputs: [b{b}, n{b - 1}], activation: relu}}\n"
        )
    network = network_of("".join(blocks) + "  - {type: global_avgpool}\n  - {name: out, type: dense, neurons: 3}\n")
    assert len(folded(network)) == 21 and len(network._program) == 21 + 20 + 2
    x = batch_of(network)
    out, most = forward_counting_arrays(network, x)
    # At any moment: the skip value, the block's convolution (its batch norm inside it), and the sum
    # written into that convolution's array; never every block's values.
    assert most <= 2
    np.testing.assert_allclose(out, network.forward_with_backprop(x)[0], **TOLERANCE["float32"])
