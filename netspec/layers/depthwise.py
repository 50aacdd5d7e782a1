"""Depthwise convolutions (one group per input channel) at inference and in training's forward: in-place
multiply-adds over whole rows of the padded channels-last input, a kernel tap at a time, block by block while
the block is in cache, never a product with a block-diagonal matrix."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from netspec.layers.conv_forward import Plan, finished, padded

DEPTHWISE_BLOCK_BYTES = 256 << 10
"""Output of a depthwise convolution computed at a time: every kernel position adds into it while in cache."""


def depthwise(
    x: np.ndarray,
    taps: np.ndarray,
    p: Plan,
    data: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    finish: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """z (batch, out_h, out_w, channels, filters per channel) of a depthwise convolution with `taps`
    (kh, kw, channels, filters per channel), plus `bias` (one per filter) and then `finish` (the
    activation, in place, on rows of filters): for each kernel position, the strided slice of the padded
    input times its taps, added in place; `data` is the padded input if already made.

    The output goes in blocks of rows small enough to stay in cache while every kernel position adds in
    and the bias and activation follow.
    """
    data = padded(x, p) if data is None else data
    each = taps.shape[-1]
    if each == 1:
        return _one_per_channel(data, taps[..., 0], p, bias, finish)[..., None]
    out_h, out_w = p.out_hw
    z = np.empty((p.batch, out_h, out_w, p.channels, each), dtype=np.result_type(data, taps))
    step = max(1, DEPTHWISE_BLOCK_BYTES // max(out_w * p.channels * each * z.itemsize, 1))
    spare = np.empty((min(step, out_h), *z.shape[2:]), dtype=z.dtype)
    for b in range(p.batch):
        for top in range(0, out_h, step):
            bottom = min(top + step, out_h)
            out, tmp = z[b, top:bottom], spare[: bottom - top]
            for n, (i, j, rows, cols) in enumerate(p.taps((top, bottom))):
                np.multiply(data[b, rows, cols, :, None], taps[i, j], out=tmp if n else out)
                if n:
                    out += tmp
            finished(out.reshape(-1, p.channels * each), bias, finish)
    return z


def _one_per_channel(data: np.ndarray, taps: np.ndarray, p: Plan, bias, finish) -> np.ndarray:
    """z (batch, out_h, out_w, channels) for one filter per channel, `taps` (kh, kw, channels).

    Each kernel position's pixels are taken as rows of out_w · channels contiguous numbers and its taps
    repeated along a row, so that NumPy's inner loops run over whole rows, not over the channels alone:
    with a stride along the width, the input is first split by column phase (every stride-th column), a
    copy each, in which every kernel position reads contiguous runs.
    """
    out_h, out_w = p.out_hw
    (sh, sw), (dh, dw), channels = p.stride, p.dilation, p.channels
    if sw == 1:
        phases = [np.ascontiguousarray(data)]
    else:
        phases = [np.ascontiguousarray(data[:, :, q::sw]) for q in range(sw)]
    z = np.empty((p.batch, out_h, out_w * channels), dtype=np.result_type(data, taps))
    row = out_w * channels
    step = max(1, DEPTHWISE_BLOCK_BYTES // max(row * z.itemsize, 1))
    spare = np.empty((min(step, out_h), row), dtype=z.dtype)
    reads = []
    for i in range(p.kernel[0]):
        for j in range(p.kernel[1]):
            phase, start = phases[j * dw % sw], j * dw // sw
            reads.append((i * dh, phase[:, :, start : start + out_w], np.tile(taps[i, j], out_w).astype(z.dtype)))
    for b in range(p.batch):
        for top in range(0, out_h, step):
            bottom = min(top + step, out_h)
            out, tmp = z[b, top:bottom], spare[: bottom - top]
            for n, (first, columns, tap) in enumerate(reads):
                pixels = columns[b, first + top * sh : first + (bottom - 1) * sh + 1 : sh].reshape(bottom - top, row)
                np.multiply(pixels, tap, out=tmp if n else out)
                if n:
                    out += tmp
            finished(out.reshape(-1, channels), bias, finish)
    return z.reshape(p.batch, out_h, out_w, channels)
