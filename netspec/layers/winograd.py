"""A 3×3 convolution of stride 1 at inference by Winograd's minimal filtering F(2×2, 3×3).

Each 2×2 block of output pixels is read from a 4×4 tile of the padded input: with the input tile d and
the filter g transformed as V = Bᵀ d B and U = G g Gᵀ, the block is Aᵀ (Σ_channels U ⊙ V) A. The sum over
the channels is, for each of the 16 positions of the 4×4 transform, one matrix product (tiles, channels)
by (channels, filters): 16 multiplications per tile where the direct product takes 36 per 2×2 block,
2.25× fewer. The transforms are additions over whole arrays.

Its float32 rounding is a little larger than the direct product's (the input transform adds up to four
values, the output transform twelve products, and G's halves are exact): the tests measure both against
float64.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from netspec import threads as blas
from netspec.layers import conv_forward

BLOCK_BYTES = 4 << 20
"""Largest transformed block (16 × tiles × channels) made at a time: memory stays bounded and the block
is still in cache when its products read it."""

MIN_CHANNELS = 128
"""Fewest input channels (and filters) that take this path: with fewer, the 16 products are too thin for
BLAS to run at its speed, and the transforms (passes over the tiles) cost as much as the multiplications
saved (ResNet-18's 64-channel 3×3s at 56×56: 1.01× at batch 1 and 8)."""


_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
_GG = np.kron(_G, _G)
"""(G g Gᵀ) flattened = (G ⊗ G) g flattened, both row by row."""


def eligible(p: conv_forward.Plan, filters: int) -> bool:
    """Whether the runner takes this path for a convolution of plan `p` with `filters` filters: 3×3, stride 1,
    dilation 1, one group, as measured on ResNet-18 and VGG-11's layers (docs/performance.md):

    - at least MIN_CHANNELS channels and filters;
    - no more filters than channels: where the filters double (VGG-11's 128 → 256 at 56×56) the direct
      product, whose inner dimension is 9 × the channels, measured faster (0.78×);
    - at least as many output pixels (batch × height × width) as filters: the weights' transform reads and
      writes 16 numbers per channel and filter at each call, which a small output does not pay back
      (512 filters at 7×7: 0.45× at batch 1, 0.96× at batch 8).
    """
    return (
        p.kernel == (3, 3)
        and p.stride == (1, 1)
        and p.dilation == (1, 1)
        and p.groups == 1
        and MIN_CHANNELS <= filters <= p.channels
        and p.rows >= filters
    )


def weights(w: np.ndarray, dtype) -> np.ndarray:
    """U = G g Gᵀ for each filter and channel, as (16, channels, filters): the right-hand sides of the
    16 products. Made at each call: the arrays may be changed in place between calls."""
    filters, channels = w.shape[:2]
    # One product by G ⊗ G, (16, 9), of the weights ordered (kernel position, channel, filter): the
    # result is already in the products' order (a transposed copy of the 16 matrices costs more).
    taps = np.ascontiguousarray(w.transpose(2, 3, 1, 0), dtype=dtype).reshape(9, channels * filters)
    return (_GG.astype(dtype) @ taps).reshape(16, channels, filters)


def inferred(
    x: np.ndarray,
    w: np.ndarray,
    p: conv_forward.Plan,
    bias: np.ndarray | None = None,
    finish: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """z (rows, filters) channels-last, as `conv_forward.inferred` gives it for a 3×3 convolution of
    stride 1, dilation 1 and one group: plus `bias`, then `finish` (the activation, in place)."""
    batch, channels, filters = p.batch, p.channels, len(w)
    out_h, out_w = p.out_hw
    dtype = np.result_type(x, w)
    tiles_h, tiles_w = -(-out_h // 2), -(-out_w // 2)
    # The padded input, grown by a row or column of zeros where the output's size is odd: every tile whole.
    (top, _), (left, _) = p.padding
    height, width = 2 * tiles_h + 2, 2 * tiles_w + 2
    data = np.zeros((batch, height, width, channels), dtype=dtype)
    in_h, in_w = min(x.shape[2], height - top), min(x.shape[3], width - left)
    data[:, top : top + in_h, left : left + in_w] = conv_forward.channels_last(x)[:, :in_h, :in_w]
    u = weights(w, dtype)
    z = np.empty((batch, 2 * tiles_h, 2 * tiles_w, filters), dtype=dtype)
    per_tile = 16 * max(channels, filters) * data.itemsize
    step = max(1, BLOCK_BYTES // per_tile)  # tiles per block
    blocks = _blocks(batch, tiles_h, tiles_w, step)
    # The 16 products of a block are small: BLAS threads as netspec.threads chooses for one of them (one
    # thread, unless the caller holds a limit already), not as for the direct product, 9 / 16 × 16 × larger.
    largest = max((last - first) * (r1 - r0) for first, last, r0, r1 in blocks) * tiles_w * channels * filters
    with blas.limited(blas.for_work(largest, dtype.itemsize)):
        for first, last, r0, r1 in blocks:
            v = _input_transform(data[first:last, 2 * r0 : 2 * r1 + 2], tiles_w)
            images, rows = last - first, r1 - r0
            m = np.matmul(v.reshape(16, -1, channels), u)  # (16, tiles, filters)
            y = z[first:last, 2 * r0 : 2 * r1].reshape(images, rows, 2, tiles_w, 2, filters)
            _output_transform(m.reshape(4, 4, images, rows, tiles_w, filters), y)
    if (2 * tiles_h, 2 * tiles_w) != (out_h, out_w):
        z = np.ascontiguousarray(z[:, :out_h, :out_w])
    rows = z.reshape(-1, filters)
    conv_forward.finished(rows, bias, finish)
    return rows


def _blocks(batch: int, tiles_h: int, tiles_w: int, step: int):
    """(first image, last image + 1, first tile row, last tile row + 1) of each block of about `step` tiles."""
    per_image = tiles_h * tiles_w
    if per_image <= step:
        images = step // per_image
        return [(b, min(b + images, batch), 0, tiles_h) for b in range(0, batch, images)]
    rows = max(1, step // tiles_w)
    return [(b, b + 1, r, min(r + rows, tiles_h)) for b in range(batch) for r in range(0, tiles_h, rows)]


def _input_transform(rows: np.ndarray, tiles_w: int) -> np.ndarray:
    """V = Bᵀ d B for every 4×4 tile d of stride 2 in `rows` (images, 2 · tile rows + 2, width, channels):
    (4, 4, images, tile rows, tile columns, channels), with
    Bᵀ = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]].

    Bᵀ is applied to whole rows of pixels first (runs of width × channels numbers), then B to every
    other pixel of those: never to the tiles one by one, which overlap and would be read twice.
    """
    n = (rows.shape[1] - 2) // 2
    r = [rows[:, i : i + 2 * n : 2] for i in range(4)]  # row i of each tile row's tiles
    t = np.empty((4, *r[0].shape), dtype=rows.dtype)
    np.subtract(r[0], r[2], out=t[0])
    np.add(r[1], r[2], out=t[1])
    np.subtract(r[2], r[1], out=t[2])
    np.subtract(r[1], r[3], out=t[3])
    v = np.empty((4, 4, len(rows), n, tiles_w, rows.shape[-1]), dtype=rows.dtype)
    c = [t[:, :, :, j : j + 2 * tiles_w : 2] for j in range(4)]  # column j of each tile, all four rows
    np.subtract(c[0], c[2], out=v[:, 0])
    np.add(c[1], c[2], out=v[:, 1])
    np.subtract(c[2], c[1], out=v[:, 2])
    np.subtract(c[1], c[3], out=v[:, 3])
    return v


def _output_transform(m: np.ndarray, y: np.ndarray) -> None:
    """y[…, a, …, b, :] = (Aᵀ m A)[a, b] for m (4, 4, …, filters), with Aᵀ = [[1, 1, 1, 0], [0, 1, -1, -1]];
    y is (images, tile rows, 2, tile columns, 2, filters)."""
    s = np.empty((2, 4, *m.shape[2:]), dtype=m.dtype)
    for j in range(4):
        np.add(m[0, j], m[1, j], out=s[0, j])
        s[0, j] += m[2, j]
        np.subtract(m[1, j], m[2, j], out=s[1, j])
        s[1, j] -= m[3, j]
    for a in range(2):
        out0, out1 = y[:, :, a, :, 0], y[:, :, a, :, 1]
        np.add(s[a, 0], s[a, 1], out=out0)
        out0 += s[a, 2]
        np.subtract(s[a, 1], s[a, 2], out=out1)
        out1 -= s[a, 3]
