"""Winograd's F(2×2, 3×3) at inference (netspec/layers/winograd.py) against the plain product path
(conv_forward.inferred) and PyTorch, on odd sizes, every kind of padding, batch 1 and 7, float32 and float64;
and the runner's choice of it: only 3×3 convolutions of stride 1, dilation 1, one group, large enough."""

from __future__ import annotations

import numpy as np
import pytest

from netspec.layers import Conv2D, conv2d, conv_forward, winograd

torch = pytest.importorskip("torch")
F = torch.nn.functional

# padding as the layer takes it, and (top, bottom, left, right) for PyTorch
PADDINGS = {"1": (1, (1, 1, 1, 1)), "same": ("same", (1, 1, 1, 1)), "sides": ([0, 2, 2, 1], (0, 2, 2, 1))}
SIZES = [(1, 1), (2, 2), (1, 4), (5, 6), (7, 7), (6, 9)]  # odd and even outputs: the last tile padded, cropped

# float32: the direct product's own error against float64 is ~6e-7 of the largest output (measured over
# 256 channels: test_float32_error_as_the_direct_products), Winograd's the same order (its transforms add at
# most 4 inputs and 12 products, and G's halves are exact); 1e-5 of the largest output leaves a margin of 10×.
FLOAT32_ATOL = 1e-5


def torch_conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, pads) -> np.ndarray:
    top, bottom, left, right = pads
    t = F.pad(torch.from_numpy(x), (left, right, top, bottom))
    return F.conv2d(t, torch.from_numpy(w), torch.from_numpy(b)).numpy()


def arrays(batch: int, channels: int, filters: int, size, dtype, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, channels, *size)).astype(dtype)
    w = (rng.normal(size=(filters, channels, 3, 3)) / np.sqrt(9 * channels)).astype(dtype)
    return x, w, rng.normal(size=filters).astype(dtype)


def as_images(z: np.ndarray, p: conv_forward.Plan, filters: int) -> np.ndarray:
    return z.reshape(p.batch, *p.out_hw, filters).transpose(0, 3, 1, 2)


def check(got: np.ndarray, want: np.ndarray, dtype) -> None:
    if dtype == np.float64:
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12 * np.abs(want).max())
    else:
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=FLOAT32_ATOL * np.abs(want).max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch", [1, 7])
@pytest.mark.parametrize("size", SIZES, ids=[f"{h}x{w}" for h, w in SIZES])
@pytest.mark.parametrize("padding", PADDINGS, ids=list(PADDINGS))
def test_matches_the_product_path_and_pytorch(padding, size, batch, dtype):
    given, pads = PADDINGS[padding]
    x, w, b = arrays(batch, 5, 4, size, dtype)
    p = conv_forward.plan(x.shape, (3, 3), (1, 1), (1, 1), given, 1, x.itemsize, 4)
    relu = lambda z: np.maximum(z, 0, out=z)  # noqa: E731  the runner's finish: in place
    got = as_images(winograd.inferred(x, w, p, b, relu), p, 4)
    direct = as_images(conv_forward.inferred(x, w, p, b, relu), p, 4)
    want = np.maximum(torch_conv(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), pads), 0)
    assert got.shape == want.shape and got.dtype == dtype
    check(got, want, dtype)
    check(got, direct, dtype)


@pytest.mark.parametrize("size", [(3, 3), (4, 4), (7, 8)])
def test_no_padding(size):
    """padding 0 ('valid'): the output is the input less 2 pixels, the tiles read the input itself."""
    x, w, b = arrays(7, 6, 3, size, np.float64, seed=1)
    p = conv_forward.plan(x.shape, (3, 3), (1, 1), (1, 1), "valid", 1, x.itemsize, 3)
    got = as_images(winograd.inferred(x, w, p, b), p, 3)
    check(got, torch_conv(x, w, b, (0, 0, 0, 0)), np.float64)


def test_in_blocks(monkeypatch):
    """Blocks of a few tile rows (one image) and of several images give the same output as one block."""
    x, w, b = arrays(3, 8, 6, (9, 13), np.float64, seed=2)
    p = conv_forward.plan(x.shape, (3, 3), (1, 1), (1, 1), 1, 1, x.itemsize, 6)
    want = torch_conv(x, w, b, (1, 1, 1, 1))
    for tiles in (1, 7, 2 * 35):  # a tile row in part, 1 tile row, 2 images (35 tiles each)
        monkeypatch.setattr(winograd, "BLOCK_BYTES", tiles * 16 * 8 * 8)
        check(as_images(winograd.inferred(x, w, p, b), p, 6), want, np.float64)


def test_float32_error_as_the_direct_products():
    """Against float64, over 256 channels: Winograd's float32 error is of the direct product's order, and
    both well inside the tests' tolerance (FLOAT32_ATOL of the largest output)."""
    x, w, b = arrays(2, 256, 128, (14, 14), np.float32, seed=3)
    p = conv_forward.plan(x.shape, (3, 3), (1, 1), (1, 1), 1, 1, x.itemsize, 128)
    exact = conv_forward.inferred(x.astype(np.float64), w.astype(np.float64), p, b.astype(np.float64))
    scale = np.abs(exact).max()
    direct = np.abs(conv_forward.inferred(x, w, p, b) - exact).max() / scale
    fast = np.abs(winograd.inferred(x, w, p, b) - exact).max() / scale
    assert direct < FLOAT32_ATOL / 10 and fast < FLOAT32_ATOL / 10
    assert fast < 4 * direct


@pytest.fixture
def taken(monkeypatch) -> list:
    """The plans the runner sent through winograd.inferred."""
    calls, real = [], winograd.inferred

    def spy(x, w, p, bias=None, finish=None):
        calls.append(p)
        return real(x, w, p, bias, finish)

    monkeypatch.setattr(winograd, "inferred", spy)
    return calls


def run(layer: Conv2D, channels: int, batch: int, size, groups: int = 1):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(batch, channels, *size)).astype(np.float32)
    w = rng.normal(size=(layer.filters, channels // groups, *layer.kernel)).astype(np.float32) / 30
    b = rng.normal(size=layer.filters).astype(np.float32)
    return x, w, b, conv2d.runner(layer, {"weights": w, "bias": b})(x)


@pytest.mark.parametrize("padding", [1, "same", [2, 0, 0, 2], "valid"])
def test_the_runner_takes_it(taken, padding):
    layer = Conv2D(filters=128, kernel=3, padding=padding, activation="relu")
    x, w, b, y = run(layer, 160, 7, (9, 6))
    assert len(taken) == 1
    pads = {"1": (1, 1, 1, 1), "same": (1, 1, 1, 1), "valid": (0, 0, 0, 0)}.get(str(padding), (2, 0, 0, 2))
    check(y, np.maximum(torch_conv(x, w, b, pads), 0), np.float32)


@pytest.mark.parametrize(
    "layer, channels, batch, size",
    [
        (Conv2D(filters=128, kernel=3, stride=2, padding=1), 128, 7, (9, 9)),
        (Conv2D(filters=128, kernel=3, dilation=2, padding=2), 128, 7, (9, 9)),
        (Conv2D(filters=128, kernel=3, groups=2, padding=1), 128, 7, (9, 9)),
        (Conv2D(filters=128, kernel=1), 128, 7, (9, 9)),
        (Conv2D(filters=128, kernel=5, padding=2), 128, 7, (9, 9)),
        (Conv2D(filters=128, kernel=[3, 1], padding=[1, 0]), 128, 7, (9, 9)),
        (Conv2D(filters=64, kernel=3, padding=1), 64, 7, (9, 9)),  # too few channels
        (Conv2D(filters=256, kernel=3, padding=1), 128, 7, (9, 9)),  # more filters than channels
        (Conv2D(filters=256, kernel=3, padding=1), 256, 1, (7, 7)),  # fewer output pixels than filters
        (Conv2D(filters=128, kernel=3, padding=1), 128, 0, (9, 9)),  # an empty batch
    ],
    ids=["stride2", "dilation2", "groups2", "1x1", "5x5", "3x1", "64ch", "widening", "small", "empty"],
)
def test_other_layers_keep_the_product_path(taken, layer, channels, batch, size):
    groups = layer.groups
    x, w, b, y = run(layer, channels, batch, size, groups)
    assert taken == []
    want = F.conv2d(
        torch.from_numpy(x),
        torch.from_numpy(w),
        torch.from_numpy(b),
        stride=tuple(layer.stride),
        padding=conv_pads(layer),
        dilation=tuple(layer.dilation),
        groups=groups,
    ).numpy()
    assert y.shape == want.shape
    if want.size:
        check(y, want, np.float32)


def conv_pads(layer: Conv2D) -> tuple[int, int]:
    """PyTorch's symmetric padding for the layers above (all symmetric)."""
    if layer.padding == "valid":
        return (0, 0)
    if isinstance(layer.padding, int):
        return (layer.padding, layer.padding)
    return tuple(layer.padding)
