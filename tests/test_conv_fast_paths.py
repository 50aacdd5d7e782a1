"""The convolution's fast forward paths (1×1 as a bare product, blocked unrolling at inference, channel-major
unrolling for heavy weights, in-place depthwise multiply-adds) against a plain convolution and PyTorch."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from netspec.layers import Conv2D, conv2d, conv_forward, depthwise

torch = pytest.importorskip("torch")
F = torch.nn.functional

C = 6  # input channels: divisible by the groups below
# (layer, input height and width), odd sizes throughout.
CASES = [
    (Conv2D(filters=5, kernel=1), (9, 11)),  # 1×1: the input is the column matrix
    (Conv2D(filters=4, kernel=1, stride=2, activation="relu"), (9, 11)),  # 1×1 stride 2 (a downsample)
    (Conv2D(filters=6, kernel=1, stride=[3, 2], groups=2), (10, 11)),  # 1×1 in groups, stride 3 × 2
    (Conv2D(filters=4, kernel=1, padding=1), (5, 7)),  # 1×1 with padding: not a bare product
    (Conv2D(filters=4, kernel=[3, 5], stride=[2, 3], padding=[1, 0, 2, 1], activation="tanh"), (11, 13)),
    (Conv2D(filters=6, kernel=[5, 3], dilation=2, padding="same", groups=3), (9, 12)),
    (Conv2D(filters=3, kernel=7, stride=2, padding=3, activation="softmax"), (15, 13)),  # a stem
    (Conv2D(filters=4, kernel=[3, 1], stride=3, groups=2, padding="same"), (10, 8)),
    (Conv2D(filters=6, kernel=3, groups=6, padding=1, activation="relu"), (9, 11)),  # depthwise
    (Conv2D(filters=6, kernel=3, stride=2, groups=6, padding="same"), (10, 11)),  # depthwise stride 2, odd pad after
    (Conv2D(filters=6, kernel=[5, 3], stride=3, groups=6, dilation=2, padding=[2, 0, 1, 3]), (12, 13)),
    # Depthwise with two filters per channel; softmax over the filters at each pixel.
    (
        Conv2D(
            filters=12,
            kernel=[3, 5],
            groups=6,
            stride=[1, 3],
            dilation=[2, 1],
            padding=[2, 1, 0, 2],
            activation="softmax",
        ),
        (9, 11),
    ),
]
IDS = [f"case{i}" for i in range(len(CASES))]
TOLERANCE = {np.float32: 1e-5, np.float64: 1e-12}


def pads(layer: Conv2D, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) worked out here: PyTorch's padding='same' is stride 1 only."""
    if layer.padding == "same":  # TensorFlow's rule: the output keeps ceil(size / stride), the odd pixel after
        found = []
        for n, k, s, d in zip(size, layer.kernel, layer.stride, layer.dilation):
            total = max((-(-n // s) - 1) * s + d * (k - 1) + 1 - n, 0)
            found += [total // 2, total - total // 2]
        return tuple(found)
    if layer.padding == "valid":
        return (0, 0, 0, 0)
    if isinstance(layer.padding, int):
        return (layer.padding,) * 4
    if len(layer.padding) == 2:
        return (layer.padding[0],) * 2 + (layer.padding[1],) * 2
    return tuple(layer.padding)


def params_for(layer: Conv2D, dtype) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(layer.filters * 31 + layer.kernel[0])
    weights = rng.normal(size=(layer.filters, C // layer.groups, *layer.kernel)).astype(dtype)
    return {"weights": weights, "bias": rng.normal(size=layer.filters).astype(dtype)}


def plain(layer: Conv2D, params: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """The convolution by its definition: for each kernel position, each filter's tap times its channel's
    strided pixels (every filter against every channel of its group), summed; then the activation."""
    top, bottom, left, right = pads(layer, x.shape[2:])
    data = np.pad(x, [(0, 0), (0, 0), (top, bottom), (left, right)])
    (sh, sw), (dh, dw), (kh, kw) = layer.stride, layer.dilation, layer.kernel
    out_h = (data.shape[2] - dh * (kh - 1) - 1) // sh + 1
    out_w = (data.shape[3] - dw * (kw - 1) - 1) // sw + 1
    w, per_group = params["weights"], C // layer.groups
    size = layer.filters // layer.groups
    z = np.zeros((len(x), layer.filters, out_h, out_w))
    for f in range(layer.filters):
        group = f // size
        for c in range(per_group):
            for i in range(kh):
                for j in range(kw):
                    pixels = data[:, group * per_group + c, i * dh :: sh, j * dw :: sw][:, :out_h, :out_w]
                    z[:, f] += w[f, c, i, j] * pixels.astype(np.float64)
    z += params["bias"][:, None, None]
    if layer.activation == "softmax":  # over the filters, at each pixel
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return {"linear": z, "relu": np.maximum(z, 0), "tanh": np.tanh(z)}[layer.activation]


def pytorch(layer: Conv2D, params: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    top, bottom, left, right = pads(layer, x.shape[2:])
    tx = F.pad(torch.from_numpy(x).double(), (left, right, top, bottom))
    w, b = (torch.from_numpy(params[key]).double() for key in ("weights", "bias"))
    y = F.conv2d(tx, w, b, stride=tuple(layer.stride), dilation=tuple(layer.dilation), groups=layer.groups)
    return activated(layer, y).numpy()


def activated(layer: Conv2D, y):
    functions = {"linear": lambda y: y, "relu": F.relu, "tanh": torch.tanh, "softmax": lambda y: y.softmax(dim=1)}
    return functions[layer.activation](y)


def image(batch: int, size: tuple[int, int], dtype, memory: str) -> np.ndarray:
    x = np.random.default_rng(batch).normal(size=(batch, C, *size)).astype(dtype)
    if memory == "channels-last":  # as a convolution leaves it
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    return x


def assert_close(found: np.ndarray, expected: np.ndarray, dtype) -> None:
    rtol = TOLERANCE[dtype]
    assert found.dtype == dtype and found.shape == expected.shape
    np.testing.assert_allclose(found, expected, rtol=rtol, atol=rtol * np.abs(expected).max())


@pytest.fixture(params=["whole", "in small blocks"])
def blocks(request, monkeypatch):
    """Unrolling at inference in one block, or in blocks of a few output rows (several per image)."""
    if request.param == "in small blocks":
        monkeypatch.setattr(conv_forward, "BLOCK_BYTES", 1)  # one output row per block
        monkeypatch.setattr(conv_forward, "BLOCK_PER_WEIGHT", 0)
        monkeypatch.setattr(depthwise, "DEPTHWISE_BLOCK_BYTES", 1)
    conv_forward._plan.cache_clear()
    yield request.param
    conv_forward._plan.cache_clear()


@pytest.mark.parametrize("memory", ["channels-first", "channels-last"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch", [1, 7])
@pytest.mark.parametrize("layer, size", CASES, ids=IDS)
def test_forward_and_runner_match_a_plain_convolution_and_pytorch(layer, size, batch, dtype, memory, blocks):
    params = params_for(layer, dtype)
    x = image(batch, size, dtype, memory)
    expected = pytorch(layer, params, x)
    np.testing.assert_allclose(plain(layer, params, x), expected, rtol=1e-12, atol=1e-12)  # the references agree
    assert_close(conv2d.forward(layer, params, x)[0], expected, dtype)
    assert_close(conv2d.runner(layer, params)(x), expected, dtype)
    assert_close(conv2d.runner(layer, params)(x), expected, dtype)  # again: the plan for this shape is reused


@pytest.mark.parametrize("heavy", [0.0, np.inf], ids=["channel-major", "kernel-major"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layer, size", [case for case in CASES if case[0].groups != C], ids=IDS[:8])
def test_both_unrolling_orders_give_the_convolution(layer, size, dtype, heavy, monkeypatch):
    # Heavy weights are read in their own order (channel, kernel row, kernel column); light ones reordered.
    monkeypatch.setattr(conv_forward, "WEIGHT_HEAVY", heavy)
    params = params_for(layer, dtype)
    x = image(3, size, dtype, "channels-last")
    assert_close(conv2d.runner(layer, params)(x), pytorch(layer, params, x), dtype)


@pytest.mark.parametrize("layer, size", CASES, ids=IDS)
def test_gradients_through_the_fast_forward_match_pytorch(layer, size):
    params = params_for(layer, np.float64)
    x = image(7, size, np.float64, "channels-last")
    top, bottom, left, right = pads(layer, size)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, params["weights"], params["bias"]))
    y = F.conv2d(
        F.pad(tx, (left, right, top, bottom)),
        tw,
        tb,
        stride=tuple(layer.stride),
        dilation=tuple(layer.dilation),
        groups=layer.groups,
    )
    y = activated(layer, y)
    mine, backprop = conv2d.forward(layer, params, x)
    g = np.random.default_rng(5).normal(size=mine.shape)
    (y * torch.from_numpy(g)).sum().backward()
    dx, grads = backprop(g)
    for found, tensor in ((dx, tx), (grads["weights"], tw), (grads["bias"], tb)):
        np.testing.assert_allclose(found, tensor.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_a_1x1_convolution_reads_the_input_itself_as_its_columns():
    layer, size = CASES[0]
    x = image(7, size, np.float32, "channels-last")
    done = conv2d._Products(layer, params_for(layer, np.float32), x)
    assert np.shares_memory(done.columns, x)  # no copy of the input was made


def test_the_runner_unrolls_a_large_input_in_bounded_blocks():
    # A 7×7 stem at batch 7 unrolls to 7 · 8 · 8 · 49 · 6 doubles (1.05 MB); in blocks of 64 kB, the
    # runner's peak stays near the output and the padded input, far below the whole unrolled matrix.
    layer = Conv2D(filters=4, kernel=7, stride=2, padding=3)
    params = params_for(layer, np.float64)
    x = image(7, (15, 15), np.float64, "channels-last")
    whole = 7 * 8 * 8 * 49 * C * 8
    saved = conv_forward.BLOCK_BYTES
    conv_forward.BLOCK_BYTES = 64 << 10
    conv_forward._plan.cache_clear()
    try:
        run = conv2d.runner(layer, params)
        tracemalloc.start()
        y = run(x)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    finally:
        conv_forward.BLOCK_BYTES = saved
        conv_forward._plan.cache_clear()
    assert peak < whole / 3, f"peak {peak:,} bytes for {whole:,} bytes of unrolled windows"
    assert_close(y, pytorch(layer, params, x), np.float64)


@pytest.mark.parametrize("layer, size", CASES, ids=IDS)
def test_an_empty_batch_gives_an_empty_output(layer, size):
    params = params_for(layer, np.float32)
    x = np.zeros((0, C, *size), dtype=np.float32)
    expected = pytorch(layer, params, np.zeros((1, C, *size), dtype=np.float32)).shape[1:]
    y, backprop = conv2d.forward(layer, params, x)
    assert y.shape == conv2d.runner(layer, params)(x).shape == (0, *expected)
    assert backprop(y)[0].shape == x.shape
