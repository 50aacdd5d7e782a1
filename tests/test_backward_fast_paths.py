"""Backward passes of convolutional networks (issue 15): float32 batch norm's precision while training,
and every gradient of the fast paths against PyTorch's autograd and against the plain path."""

import numpy as np
import pytest
from references import torch_conv2d

from netspec.layers import batchnorm, conv2d
from netspec.layers.batchnorm import BatchNorm
from netspec.layers.conv2d import Conv2D

torch = pytest.importorskip("torch")
F = torch.nn.functional


# --- batch norm in float32 --------------------------------------------------------------------------


def _stack(seed: int = 0):
    """A stack of conv → batchnorm(relu), 4 deep, whose values sit far from 0 (as after relus and
    shortcuts): 16 × 32 × 32 values per channel, where float32 sums lose digits."""
    rng = np.random.default_rng(seed)
    depth, channels, batch, side, offset = 4, 4, 16, 32, 20.0
    x = rng.normal(size=(batch, channels, side, side)) + offset
    weights = [rng.normal(0, (2 / (9 * channels)) ** 0.5, size=(channels, channels, 3, 3)) for _ in range(depth)]
    scales = [rng.uniform(0.5, 1.5, size=channels) for _ in range(depth)]
    shifts = [rng.normal(0, 0.1, size=channels) + offset for _ in range(depth)]
    return x, weights, scales, shifts, rng.normal(size=x.shape)


def _netspec_grads(dtype, x, weights, scales, shifts, g):
    conv, norm = Conv2D(filters=len(weights[0]), kernel=3, padding=1, use_bias=False), BatchNorm(activation="relu")
    backprops, h = [], x.astype(dtype)
    for w, scale, shift in zip(weights, scales, shifts):
        running = {"mean": np.zeros(len(scale), dtype), "var": np.ones(len(scale), dtype)}
        h, back = conv2d.forward(conv, {"weights": w.astype(dtype)}, h, train=True)
        backprops.append(back)
        h, back = batchnorm.forward(
            norm, {"scale": scale.astype(dtype), "shift": shift.astype(dtype)} | running, h, True
        )
        backprops.append(back)
    grads, dy = [], g.astype(dtype)
    for back in reversed(backprops):
        dy, each = back(dy)
        grads += [each[key] for key in ("weights", "scale", "shift") if key in each]
    return grads, dy


def _torch_grads(dtype, x, weights, scales, shifts, g):
    def leaf(a):
        return torch.tensor(a, dtype=dtype, requires_grad=True)

    ws, ss, bs, tx = [leaf(w) for w in weights], [leaf(s) for s in scales], [leaf(b) for b in shifts], leaf(x)
    h = tx
    for w, scale, shift in zip(ws, ss, bs):
        h = torch.relu(F.batch_norm(F.conv2d(h, w, padding=1), None, None, scale, shift, training=True))
    (h * torch.tensor(g, dtype=dtype)).sum().backward()
    grads = [a.grad.numpy() for w, s, b in zip(ws[::-1], ss[::-1], bs[::-1]) for a in (s, b, w)]  # netspec's order
    return grads, tx.grad.numpy()


def _error(ours: np.ndarray, exact: np.ndarray) -> float:
    return float(np.max(np.abs(ours - exact)) / np.max(np.abs(exact)))


def test_float32_batchnorm_training_is_as_precise_as_pytorchs():
    """Each gradient of a float32 conv+batchnorm stack, against the same stack in float64, is within 3× of
    PyTorch float32's own error (before, batch sums in float32 put the input gradient 20× further off)."""
    data = _stack()
    exact, exact_dx = _netspec_grads(np.float64, *data)
    theirs64, theirs64_dx = _torch_grads(torch.float64, *data)
    for a, b in zip(exact + [exact_dx], theirs64 + [theirs64_dx]):  # the float64 reference is PyTorch's
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9 * np.max(np.abs(b)))
    ours, ours_dx = _netspec_grads(np.float32, *data)
    theirs, theirs_dx = _torch_grads(torch.float32, *data)
    assert all(a.dtype == np.float32 for a in ours + [ours_dx])
    worst_theirs = max(_error(a, b) for a, b in zip(theirs, exact))
    worst_ours = max(_error(a, b) for a, b in zip(ours, exact))
    assert worst_ours <= 3 * worst_theirs, (worst_ours, worst_theirs)
    assert _error(ours_dx, exact_dx) <= 3 * _error(theirs_dx, exact_dx), (ours_dx, theirs_dx)


# --- convolution and pooling gradients ---------------------------------------------------------------

# (layer, pads (top, bottom, left, right) as PyTorch takes them, input shape): strides 1 to 3, dilation 2,
# groups and depthwise, padding per side and 'same', batches 1 and 7.
CONVS = [
    (Conv2D(filters=5, kernel=3, padding=1), (1, 1, 1, 1), (7, 3, 9, 8)),
    (Conv2D(filters=4, kernel=3, stride=2, padding=[1, 0, 2, 1], activation="relu"), (1, 0, 2, 1), (1, 3, 9, 10)),
    (Conv2D(filters=3, kernel=[3, 2], stride=3, padding="same"), (1, 1, 0, 1), (7, 2, 10, 8)),
    (Conv2D(filters=4, kernel=3, dilation=2, padding="same", activation="tanh"), (2, 2, 2, 2), (1, 3, 7, 9)),
    (Conv2D(filters=6, kernel=3, groups=3, stride=[2, 1], padding=[0, 2]), (0, 0, 2, 2), (7, 6, 9, 7)),
    (Conv2D(filters=8, kernel=3, groups=4, padding=1, stride=2, dilation=[2, 1]), (1, 1, 1, 1), (1, 4, 11, 8)),
    (Conv2D(filters=5, kernel=3, groups=5, padding=1, activation="relu"), (1, 1, 1, 1), (7, 5, 6, 7)),
    (Conv2D(filters=6, kernel=[2, 3], groups=3, stride=3, padding="same", dilation=2), (0, 1, 1, 1), (1, 3, 8, 9)),
    (Conv2D(filters=4, kernel=1, stride=2), (0, 0, 0, 0), (7, 3, 7, 6)),
    (Conv2D(filters=3, kernel=3, use_bias=False, padding=[2, 0, 0, 2]), (2, 0, 0, 2), (7, 2, 5, 5)),
    (Conv2D(filters=3, kernel=1, activation="relu"), (0, 0, 0, 0), (7, 4, 5, 3)),
    (Conv2D(filters=2, kernel=[2, 3], dilation=[1, 2]), (0, 0, 0, 0), (1, 3, 6, 9)),
]


def _channels_last(x: np.ndarray) -> np.ndarray:
    """The same values laid out as a convolution leaves them, (batch, height, width, channels) in memory."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def _plain_input_grad(layer: Conv2D, pads, dz: np.ndarray, w: np.ndarray, in_shape) -> np.ndarray:
    """The input gradient the plain way: for each kernel position and group, dz times the weights there,
    added into the padded input where that position read (no fast path of netspec's)."""
    top, bottom, left, right = pads
    batch, channels, height, width = in_shape
    (kh, kw), (sh, sw), (dh, dw), groups = layer.kernel, layer.stride, layer.dilation, layer.groups
    padded = np.zeros((batch, channels, height + top + bottom, width + left + right))
    out_h, out_w = dz.shape[2:]
    per, filters = channels // groups, len(w) // groups
    for g in range(groups):
        for i in range(kh):
            for j in range(kw):
                part = np.einsum(
                    "nfhw,fc->nchw", dz[:, g * filters : (g + 1) * filters], w[g * filters : (g + 1) * filters, :, i, j]
                )
                padded[
                    :,
                    g * per : (g + 1) * per,
                    i * dh : i * dh + sh * (out_h - 1) + 1 : sh,
                    j * dw : j * dw + sw * (out_w - 1) + 1 : sw,
                ] += part
    return padded[:, :, top : top + height, left : left + width]


@pytest.mark.parametrize("path", ["as-a-convolution", "slices"])
@pytest.mark.parametrize("memory", ["channels-first", "channels-last"])
@pytest.mark.parametrize("layer, pads, shape", CONVS, ids=[f"conv{i}" for i in range(len(CONVS))])
def test_conv2d_gradients_are_pytorchs_and_the_plain_paths(layer, pads, shape, memory, path, monkeypatch):
    """The input gradient of a stride-1 convolution is a convolution of the output gradient (where the
    padding is within the kernel's reach), through slice-adds otherwise: each is checked on every shape."""
    if path == "slices":
        monkeypatch.setattr(conv2d, "_transposed_padding", lambda p: None)
    rng = np.random.default_rng(5)
    x = rng.normal(size=shape)
    x = _channels_last(x) if memory == "channels-last" else x
    params = {"weights": rng.normal(size=(layer.filters, shape[1] // layer.groups, *layer.kernel))}
    params |= {"bias": rng.normal(size=layer.filters)} if layer.use_bias else {}
    leaves = {key: torch.tensor(a, requires_grad=True) for key, a in (("x", x), *params.items())}
    theirs = torch_conv2d(layer, leaves, pads)
    y, backprop = conv2d.forward(layer, params, x, train=True)
    np.testing.assert_allclose(y, theirs.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = rng.normal(size=y.shape)
    (theirs * torch.from_numpy(g)).sum().backward()
    dx, grads = backprop(g)
    for key, leaf in leaves.items():
        np.testing.assert_allclose(dx if key == "x" else grads[key], leaf.grad.numpy(), rtol=1e-10, atol=1e-12)
    dz, _ = backprop(g, preactivation=True)  # the gradient at z, then the plain path from it
    plain = _plain_input_grad(layer, pads, g, params["weights"], shape)
    np.testing.assert_allclose(dz, plain, rtol=1e-10, atol=1e-12)
    assert dx.shape == x.shape and grads["weights"].shape == params["weights"].shape


@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("batch", [1, 7])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_gradient_of_overlapping_windows_with_ties_is_pytorchs(ceil_mode, batch, dtype):
    """Windows of 3 every 2 share cells, and small whole numbers tie often: each window's gradient goes to
    the first of its maxima (row by row), as PyTorch's, kept from the forward or found again without it."""
    from netspec.layers import pooling
    from netspec.layers.pooling import MaxPool2D

    layer = MaxPool2D(size=3, stride=2, padding=1, ceil_mode=ceil_mode)
    x = np.random.default_rng(batch).integers(0, 3, size=(batch, 3, 8, 7)).astype(dtype)
    g = np.random.default_rng(9).normal(size=pooling.forward(layer, {}, x)[0].shape).astype(dtype)
    tx = torch.tensor(x, requires_grad=True)
    theirs = F.max_pool2d(tx, 3, 2, 1, ceil_mode=ceil_mode)
    (theirs * torch.from_numpy(g)).sum().backward()
    for memory in (x, _channels_last(x)):
        for train in (True, False):
            y, backprop = pooling.forward(layer, {}, memory, train)
            np.testing.assert_array_equal(y, theirs.detach().numpy())
            # Where windows overlap, a cell adds several windows' gradients, in another order than PyTorch's.
            np.testing.assert_allclose(backprop(g)[0], tx.grad.numpy(), rtol=1e-6 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("train", [True, False], ids=["batch-statistics", "running-statistics"])
@pytest.mark.parametrize(
    "shape, memory",
    [
        ((7, 3, 5, 3), "channels-first"),
        ((7, 3, 5, 3), "channels-last"),
        ((1, 16, 4, 4), "channels-last"),
        ((7, 5), ""),
        ((8, 5), ""),
    ],
)
def test_batchnorm_gradients_in_each_layout_are_pytorchs(shape, memory, train):
    """Channels-last values are worked on as rows of several pixels (sums.Channels), the others as they are."""
    rng = np.random.default_rng(3)
    x = rng.normal(2, 3, size=shape)
    x = _channels_last(x) if memory == "channels-last" else x
    channels = shape[1]
    params = {
        "scale": rng.uniform(0.5, 2, channels),
        "shift": rng.normal(size=channels),
        "mean": rng.normal(size=channels),
        "var": rng.uniform(0.5, 2, channels),
    }
    leaves = {key: torch.tensor(params[key], requires_grad=True) for key in ("scale", "shift")}
    tx = torch.tensor(x, requires_grad=True)
    running = {key: torch.tensor(params[key]) for key in ("mean", "var")}
    theirs = torch.tanh(
        F.batch_norm(tx, running["mean"], running["var"], leaves["scale"], leaves["shift"], training=train)
    )
    y, backprop = batchnorm.forward(BatchNorm(activation="tanh"), params, x, train)
    np.testing.assert_allclose(y, theirs.detach().numpy(), rtol=1e-10, atol=1e-12)
    for key in ("mean", "var"):  # the running statistics, updated in place as PyTorch updates its own
        np.testing.assert_allclose(params[key], running[key].numpy(), rtol=1e-10)
    g = rng.normal(size=y.shape)
    (theirs * torch.from_numpy(g)).sum().backward()
    dx, grads = backprop(g)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    for key, leaf in leaves.items():
        np.testing.assert_allclose(grads[key], leaf.grad.numpy(), rtol=1e-10, atol=1e-12)
