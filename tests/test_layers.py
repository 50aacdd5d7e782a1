"""Image layers: forward outputs and gradients against PyTorch (when installed) and finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from netspec.layers import KINDS, LAYER_MODULES, BatchNorm, Conv2D, Dropout, Flatten, GlobalAvgPool
from netspec.layers.pooling import AvgPool2D, MaxPool2D

from conftest import numeric_gradient

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # the comparisons with PyTorch are skipped; finite differences still run
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed (pip install -e '.[test]')")

# (layer, explicit padding (top, bottom, left, right) as PyTorch needs it, input shape)
CONVS = [
    (Conv2D(filters=4, kernel=3), (0, 0, 0, 0), (2, 3, 7, 6)),
    (Conv2D(filters=3, kernel=[2, 3], stride=2, padding=1, activation="relu"), (1, 1, 1, 1), (2, 2, 7, 8)),
    (Conv2D(filters=2, kernel=3, dilation=2, padding="same", activation="tanh"), (2, 2, 2, 2), (1, 3, 7, 7)),
    # `same` with stride 2 on an even size: the odd pixel of padding goes after (bottom, right).
    (Conv2D(filters=2, kernel=2, stride=2, padding="same"), (0, 0, 0, 0), (1, 2, 6, 6)),
    (Conv2D(filters=2, kernel=3, stride=2, padding="same", activation="sigmoid"), (0, 1, 0, 1), (1, 2, 6, 6)),
]
POOLS = [
    (MaxPool2D(size=2), (2, 3, 6, 6)),
    (MaxPool2D(size=3, stride=2, padding=1), (2, 2, 7, 7)),
    (AvgPool2D(size=2), (2, 3, 6, 6)),
    (AvgPool2D(size=3, stride=2, padding=1), (2, 2, 7, 7)),
]


# Grouped and depthwise convolutions, and padding per side: (layer, pads (top, bottom, left, right), input shape).
GROUPED = [
    # Two groups, stride 2, padding [top, bottom, left, right]; batch 5.
    (Conv2D(filters=6, kernel=3, groups=2, stride=2, padding=[1, 0, 2, 1]), (1, 0, 2, 1), (5, 4, 9, 8)),
    # Two groups, dilation and stride differing by axis, padding [height, width]; batch 1.
    (Conv2D(filters=4, kernel=2, groups=2, dilation=[2, 1], stride=[1, 2], padding=[1, 2]), (1, 1, 2, 2), (1, 6, 7, 9)),
    # Depthwise (a group per channel), dilated; batch 1.
    (Conv2D(filters=5, kernel=3, groups=5, padding=1, dilation=2, activation="tanh"), (1, 1, 1, 1), (1, 5, 8, 7)),
    # Depthwise with two filters per channel (PyTorch's depth multiplier), same padding, stride 2 on height; batch 5.
    (
        Conv2D(filters=6, kernel=[3, 2], groups=3, stride=[2, 1], padding="same", activation="relu"),
        (1, 1, 0, 1),
        (5, 3, 7, 6),
    ),
    # One group, padding per side only.
    (Conv2D(filters=3, kernel=3, padding=[0, 2, 1, 0], activation="sigmoid"), (0, 2, 1, 0), (2, 2, 6, 5)),
]
# Pooling with ceil_mode and padding per side: (layer, pads (top, bottom, left, right), input shape, output shape
# by hand). PyTorch: out = ceil((size + pads - kernel) / stride) + 1, less one if the last window would start
# in the padding after the input.
CEILED = [
    # ceil((6 - 3) / 2) + 1 = 3 (2 without ceil_mode): the last window runs one column past the edge.
    (MaxPool2D(size=3, stride=2, ceil_mode=True), (0, 0, 0, 0), (1, 2, 6, 6), (2, 3, 3)),
    (AvgPool2D(size=3, stride=2, ceil_mode=True), (0, 0, 0, 0), (5, 2, 6, 6), (2, 3, 3)),
    # input 6, kernel 3, stride 2, padding 1: ceil((6 + 2 - 3) / 2) + 1 = 4; the 4th window starts at 6 < 6 + 1: kept.
    (MaxPool2D(size=3, stride=2, padding=1, ceil_mode=True), (1, 1, 1, 1), (5, 2, 6, 6), (2, 4, 4)),
    (AvgPool2D(size=3, stride=2, padding=1, ceil_mode=True), (1, 1, 1, 1), (1, 2, 6, 6), (2, 4, 4)),
    # input 5, kernel 2, stride 2, padding 1: ceil((5 + 2 - 2) / 2) + 1 = 4, but the 4th window would start at
    # 6 = 5 + 1, in the padding after the input: dropped, 3 windows.
    (MaxPool2D(size=2, stride=2, padding=1, ceil_mode=True), (1, 1, 1, 1), (5, 3, 5, 5), (3, 3, 3)),
    (AvgPool2D(size=2, stride=2, padding=1, ceil_mode=True), (1, 1, 1, 1), (1, 3, 5, 5), (3, 3, 3)),
    # Different rounding on the two axes: height 8 → ceil((8 + 2 - 3) / 3) + 1 = 4, the 4th starts at 9 = 8 + 1:
    # dropped, 3; width 7 with padding [1, 0] (PyTorch's (h, w)) → ceil((7 - 3) / 3) + 1 = 3.
    (AvgPool2D(size=3, stride=3, padding=[1, 0], ceil_mode=True), (1, 1, 0, 0), (5, 2, 8, 7), (2, 3, 3)),
    # Padding per side, without and with ceil_mode (which PyTorch's pooling has no padding for).
    (MaxPool2D(size=3, stride=2, padding=[1, 0, 0, 1]), (1, 0, 0, 1), (5, 2, 7, 6), (2, 3, 3)),
    (AvgPool2D(size=3, stride=2, padding=[1, 0, 0, 1]), (1, 0, 0, 1), (1, 2, 7, 6), (2, 3, 3)),
    # height: ceil((7 + 1 - 3) / 2) + 1 = 4 (starts 0, 2, 4, 6 < 7 + 1); width: ceil((6 + 1 - 3) / 2) + 1 = 3.
    (MaxPool2D(size=3, stride=2, padding=[1, 0, 0, 1], ceil_mode=True), (1, 0, 0, 1), (5, 2, 7, 6), (2, 4, 3)),
    (AvgPool2D(size=3, stride=2, padding=[1, 0, 0, 1], ceil_mode=True), (1, 0, 0, 1), (1, 2, 7, 6), (2, 4, 3)),
]


def run(layer, params, x, train=False, rng=None):
    return LAYER_MODULES[layer.type].forward(layer, params, x, train, rng)


def conv_params(layer: Conv2D, channels: int, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "weights": rng.normal(size=(layer.filters, channels // layer.groups, *layer.kernel)).astype(dtype),
        "bias": rng.normal(size=layer.filters).astype(dtype),
    }


def torch_conv(layer: Conv2D, pads, x, w, b):
    top, bottom, left, right = pads
    z = F.conv2d(
        F.pad(x, (left, right, top, bottom)),
        w,
        b,
        stride=tuple(layer.stride),
        dilation=tuple(layer.dilation),
        groups=layer.groups,
    )
    return {"linear": z, "relu": torch.relu(z), "tanh": torch.tanh(z), "sigmoid": torch.sigmoid(z)}[layer.activation]


def compare_with_torch(ours, theirs, inputs, dtype):
    """Forward outputs and the gradients of sum(y * g) for every input, ours against PyTorch's."""
    y, backprop = ours
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-9, "atol": 1e-12}
    np.testing.assert_allclose(y, theirs.detach().numpy(), **tol)
    g = np.random.default_rng(1).normal(size=y.shape).astype(dtype)
    (theirs * torch.from_numpy(g)).sum().backward()
    dx, grads = backprop(g)
    for name, tensor in inputs.items():
        mine = dx if name == "x" else grads[name]
        np.testing.assert_allclose(mine, tensor.grad.numpy(), **tol, err_msg=name)


@needs_torch
@pytest.mark.parametrize("memory", ["channels-first", "channels-last"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layer, pads, shape", CONVS, ids=[f"conv{i}" for i in range(len(CONVS))])
def test_conv2d_matches_pytorch(layer, pads, shape, dtype, memory):
    x = np.random.default_rng(2).normal(size=shape).astype(dtype)
    if memory == "channels-last":
        x = stored_channels_last(x)
    params = conv_params(layer, shape[1], dtype)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, params["weights"], params["bias"]))
    compare_with_torch(
        run(layer, params, x), torch_conv(layer, pads, tx, tw, tb), {"x": tx, "weights": tw, "bias": tb}, dtype
    )


@needs_torch
@pytest.mark.parametrize("memory", ["channels-first", "channels-last"])
@pytest.mark.parametrize("layer, pads, shape", GROUPED, ids=[f"grouped{i}" for i in range(len(GROUPED))])
def test_grouped_and_depthwise_conv2d_match_pytorch(layer, pads, shape, memory):
    x = np.random.default_rng(12).normal(size=shape)
    if memory == "channels-last":
        x = stored_channels_last(x)
    params = conv_params(layer, shape[1], np.float64)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, params["weights"], params["bias"]))
    compare_with_torch(
        run(layer, params, x), torch_conv(layer, pads, tx, tw, tb), {"x": tx, "weights": tw, "bias": tb}, np.float64
    )
    # The fast runner computes the same (its products may be ordered differently).
    np.testing.assert_allclose(
        KINDS["conv2d"].runner(layer, params)(x), run(layer, params, x)[0], rtol=1e-12, atol=1e-12
    )


def test_a_depthwise_conv2d_is_not_a_block_diagonal_product(monkeypatch):
    # One group per channel: multiply-adds per kernel position, no matrix product at all.
    from netspec.layers import conv2d

    layer, _, shape = GROUPED[2]
    params = conv_params(layer, shape[1], np.float64)
    x = np.random.default_rng(13).normal(size=shape)
    expected = run(layer, params, x)[0]
    monkeypatch.setattr(conv2d, "_Products", None)  # the im2col products are never reached
    np.testing.assert_array_equal(run(layer, params, x)[0], expected)


def torch_pool(layer, pads, x):
    """PyTorch's pooling of x, padded (top, bottom, left, right), with netspec's avgpool divisor (real cells only)."""
    top, bottom, left, right = pads
    size, stride = tuple(layer.size), tuple(layer.stride)
    if (top, left) == (bottom, right):  # PyTorch's own padding, the same on both sides of an axis
        if layer.type == "maxpool2d":
            return F.max_pool2d(x, size, stride, (top, left), ceil_mode=layer.ceil_mode)
        return F.avg_pool2d(x, size, stride, (top, left), ceil_mode=layer.ceil_mode, count_include_pad=False)
    # Padded by hand: -inf never wins a maximum; a mean is the sum over the real cells' count.
    # Rounding up there keeps windows that start in the padding after the input: keep those netspec keeps.
    out = run(layer, {}, x.detach().numpy())[0].shape[2:]

    def pool(a, fill):
        padded = F.pad(a, (left, right, top, bottom), value=fill)
        if layer.type == "maxpool2d":
            return F.max_pool2d(padded, size, stride, ceil_mode=layer.ceil_mode)
        return F.avg_pool2d(padded, size, stride, ceil_mode=layer.ceil_mode, divisor_override=1)

    if layer.type == "maxpool2d":
        return pool(x, -torch.inf)[:, :, : out[0], : out[1]]
    return (pool(x, 0.0) / pool(torch.ones_like(x), 0.0))[:, :, : out[0], : out[1]]


@needs_torch
@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("memory", ["channels-first", "channels-last"])
@pytest.mark.parametrize("layer, pads, shape, out", CEILED, ids=[f"{p.type}{i}" for i, (p, *_) in enumerate(CEILED)])
def test_pooling_with_ceil_mode_and_padding_per_side_matches_pytorch(layer, pads, shape, out, memory, train):
    from netspec.layers import pooling

    assert pooling.output_shape(layer, shape[1:]) == out
    x = np.random.default_rng(14).normal(size=shape)
    if memory == "channels-last":
        x = stored_channels_last(x)
    tx = torch.tensor(x, requires_grad=True)
    theirs = torch_pool(layer, pads, tx)
    assert tuple(theirs.shape) == (shape[0], *out)
    compare_with_torch(run(layer, {}, x, train=train), theirs, {"x": tx}, np.float64)


def stored_channels_last(x: np.ndarray) -> np.ndarray:
    """The same values, laid out in memory as a convolution leaves them: (batch, height, width, channels)."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


@needs_torch
@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("memory", ["channels-first", "channels-last"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layer, shape", POOLS, ids=[f"{p.type}{i}" for i, (p, _) in enumerate(POOLS)])
def test_pooling_matches_pytorch(layer, shape, dtype, memory, train):
    x = np.random.default_rng(3).normal(size=shape).astype(dtype)
    if memory == "channels-last":
        x = stored_channels_last(x)
    tx = torch.tensor(x, requires_grad=True)
    size, stride = tuple(layer.size), tuple(layer.stride)
    padding = 0 if layer.padding == "valid" else layer.padding
    if layer.type == "maxpool2d":
        theirs = F.max_pool2d(tx, size, stride, padding)
    else:
        theirs = F.avg_pool2d(tx, size, stride, padding, count_include_pad=False)
    compare_with_torch(run(layer, {}, x, train=train), theirs, {"x": tx}, dtype)


def test_max_pool_gradient_goes_to_the_first_of_tied_maxima():
    x = np.array([[[[1.0, 3.0], [3.0, 0.0]]]])  # two maxima in one window
    for train in (False, True):
        y, backprop = run(MaxPool2D(size=2), {}, x, train=train)
        np.testing.assert_array_equal(backprop(np.ones_like(y))[0], [[[[0.0, 1.0], [0.0, 0.0]]]])


def test_batchnorm_with_one_value_per_channel_uses_the_running_statistics():
    params = {"scale": np.ones(2), "shift": np.zeros(2), "mean": np.array([1.0, 2.0]), "var": np.array([4.0, 9.0])}
    y, _ = run(BatchNorm(epsilon=1e-12), params, np.array([[3.0, 5.0]]), train=True)
    np.testing.assert_allclose(y, [[(3 - 1) / 2, (5 - 2) / 3]], rtol=1e-9)
    np.testing.assert_array_equal(params["mean"], [1.0, 2.0])  # untouched


@needs_torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_global_avgpool_and_flatten_match_pytorch(dtype):
    x = np.random.default_rng(4).normal(size=(2, 3, 4, 5)).astype(dtype)
    tx = torch.tensor(x, requires_grad=True)
    compare_with_torch(run(GlobalAvgPool(), {}, x), tx.mean(dim=(2, 3)), {"x": tx}, dtype)
    tx = torch.tensor(x, requires_grad=True)
    compare_with_torch(run(Flatten(), {}, x), torch.flatten(tx, 1), {"x": tx}, dtype)


@needs_torch
@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("shape", [(4, 3, 5, 5), (6, 4)], ids=["2d", "1d"])
def test_batchnorm_matches_pytorch_and_updates_running_statistics(shape, train):
    rng = np.random.default_rng(5)
    x = rng.normal(2.0, 3.0, size=shape)
    channels = shape[1]
    params = {
        "scale": rng.normal(size=channels),
        "shift": rng.normal(size=channels),
        "mean": rng.normal(size=channels),
        "var": rng.uniform(0.5, 2, size=channels),
    }
    running_mean, running_var = torch.tensor(params["mean"]), torch.tensor(params["var"])
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, params["scale"], params["shift"]))
    theirs = F.batch_norm(tx, running_mean, running_var, tw, tb, training=train, momentum=0.2, eps=1e-3)
    layer = BatchNorm(momentum=0.2, epsilon=1e-3)
    compare_with_torch(run(layer, params, x, train=train), theirs, {"x": tx, "scale": tw, "shift": tb}, np.float64)
    np.testing.assert_allclose(params["mean"], running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(params["var"], running_var.numpy(), rtol=1e-12)


def finite_difference_check(layer, params, x, train=False):
    """Gradients of sum(y * g) with respect to x and every parameter, against central differences (float64)."""
    saved = {k: v.copy() for k, v in params.items()}

    def loss() -> float:
        fresh = {k: v.copy() for k, v in params.items()}  # batchnorm's training step updates its statistics
        return float((run(layer, fresh, x, train)[0] * g).sum())

    y, backprop = run(layer, {k: v.copy() for k, v in params.items()}, x, train)
    g = np.random.default_rng(6).normal(size=y.shape)
    dx, grads = backprop(g)
    for name, array, analytic in [("x", x, dx)] + [(k, params[k], grads[k]) for k in grads]:
        np.testing.assert_allclose(analytic, numeric_gradient(loss, array), rtol=1e-5, atol=1e-7, err_msg=name)
    for k in params:
        np.testing.assert_array_equal(params[k], saved[k])


@pytest.mark.parametrize("layer, pads, shape", CONVS, ids=[f"conv{i}" for i in range(len(CONVS))])
def test_conv2d_gradients_against_finite_differences(layer, pads, shape):
    x = np.random.default_rng(7).normal(size=(1, *shape[1:]))
    finite_difference_check(layer, conv_params(layer, shape[1], np.float64), x)


@pytest.mark.parametrize("layer, shape", POOLS + [(GlobalAvgPool(), (2, 2, 3, 3)), (Flatten(), (2, 2, 3, 3))])
def test_pooling_and_flatten_gradients_against_finite_differences(layer, shape):
    finite_difference_check(layer, {}, np.random.default_rng(8).normal(size=shape))
    finite_difference_check(layer, {}, stored_channels_last(np.random.default_rng(8).normal(size=shape)))


@pytest.mark.parametrize("train", [True, False])
def test_batchnorm_gradients_against_finite_differences(train):
    rng = np.random.default_rng(9)
    params = {
        "scale": rng.normal(size=2),
        "shift": rng.normal(size=2),
        "mean": rng.normal(size=2),
        "var": rng.uniform(0.5, 2, size=2),
    }
    finite_difference_check(BatchNorm(), params, rng.normal(size=(3, 2, 2, 2)), train=train)


def test_dropout_is_the_identity_when_running_and_inverted_while_training():
    x = np.ones((200, 50))
    y, backprop = run(Dropout(rate=0.3), {}, x)
    assert y is x and backprop(x)[0] is x
    y, backprop = run(Dropout(rate=0.3), {}, x, train=True, rng=np.random.default_rng(0))
    kept = y != 0
    assert abs(1 - kept.mean() - 0.3) < 0.01  # 10,000 draws
    np.testing.assert_allclose(y[kept], 1 / 0.7)
    np.testing.assert_array_equal(backprop(np.full_like(x, 2.0))[0], 2.0 * y)


@pytest.mark.parametrize("layer, pads, shape", CONVS, ids=[f"conv{i}" for i in range(len(CONVS))])
def test_running_a_conv_gives_its_forward_output(layer, pads, shape):
    from netspec.layers import conv2d

    x = np.random.default_rng(11).normal(size=shape)
    params = conv_params(layer, shape[1], np.float64)
    # Two code paths (the runner may order its products differently): equal to float64's precision.
    np.testing.assert_allclose(
        conv2d.runner(layer, params)(x), conv2d.forward(layer, params, x)[0], rtol=1e-12, atol=1e-12
    )
