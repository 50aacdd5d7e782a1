"""A convolution's gradients: for stride 1, both from the output gradient's windows unrolled block by block
(the input gradient as a convolution of the output gradient, with no scatter-adds); else the weights'
gradient from the input's windows unrolled block by block; and all of it split over the batch between
threads.

The images of a batch go back independently: the weights' gradient is a sum over the images, the input
gradient of an image reads that image's output gradient only. So the batch is cut into one run of images
per thread, each thread computes its run's weight gradient and writes its images' input gradient, BLAS on
one thread in each (OpenBLAS's own threads measured slower than one on these products on a shared
machine), and the runs' weight gradients are added. With one thread (the user's choice, or too little
work) it is the plain path, unchanged.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from concurrent.futures import wait

import numpy as np

from netspec import threads as blas
from netspec.layers import conv_forward
from netspec.layers.conv_forward import Plan

THREADS_FROM = 1 << 25
"""Multiply-adds of a convolution's backward (its forward's, twice) from which it is split between
threads. A hand-off costs 20-50 µs, and below this the runs are small products that lose more to their
own overheads than a second core gives back: the digits CNN's second convolution (19M for a batch of 32)
trained 1.4-2.3× slower on the default setting split than on one thread; ResNet-20's (302M at batch 64)
gain."""

Part = Callable[[np.ndarray, np.ndarray, bool], tuple[np.ndarray, np.ndarray | None]]
"""(x of some images, their dz rows, input_grad) → (their weights' gradient, their input gradient
channels-last (images, height, width, channels), or None)."""


RUNS = 8
"""Runs of images a convolution's backward cuts its batch into (at most one an image), whatever the
threads: the threads take them in turn (a thread slowed by other work on its core takes fewer, rather
than the others waiting for its fixed half), and one thread does them one after another, so that the
gradients are the same numbers however many threads there are and however loaded the machine is
(training stays reproducible). ResNet-20 at batch 64: 8 images, 8,192 rows a run in its first stage."""


def runs(batch: int, multiply_adds: int) -> list[tuple[int, int]]:
    """(first image, last image + 1) of each run the batch is cut into: RUNS runs (at most one an image)
    from THREADS_FROM multiply-adds, one run below. It depends on the work's shape alone."""
    n = max(1, min(batch, RUNS)) if multiply_adds >= THREADS_FROM else 1
    cuts = [batch * k // n for k in range(n + 1)]
    return [(cuts[k], cuts[k + 1]) for k in range(n)]


def gradients(part: Part, x: np.ndarray, dz: np.ndarray, input_grad: bool, multiply_adds: int):
    """(weights' gradient, input gradient channels-last or None) of the whole batch, `part` run on each
    run of images (see `runs`), the threads (netspec.threads.workers) taking the runs in turn; dz has
    one row per output pixel, the images' rows one after another. The runs' weight gradients are added
    in the runs' order, so the result does not depend on which thread took which, nor on how many."""
    batch = len(x)
    each = runs(batch, multiply_adds)
    if len(each) == 1:
        return part(x, dz, input_grad)
    pixels = len(dz) // batch
    dx = np.empty((batch, *x.shape[2:], x.shape[1]), dtype=dz.dtype) if input_grad else None
    found: list[np.ndarray | None] = [None] * len(each)
    turns = itertools.count()
    work = functools.partial(_taking_turns, part, x, dz, pixels, input_grad, dx, each, found, turns)
    helpers = min(blas.workers(), len(each)) - 1
    if helpers < 1:
        work()
    else:
        with blas.one_each():
            pending = [blas.pool(helpers).submit(work) for _ in range(helpers)]
            try:
                work()
            finally:  # every run ends before BLAS's setting comes back, also after an error
                wait(pending)
            for done in pending:
                done.result()  # raises a helper's error
    dweights = found[0]
    for more in found[1:]:
        dweights += more
    return dweights, dx


def _taking_turns(part: Part, x, dz, pixels: int, input_grad: bool, dx, each, found, turns) -> None:
    """The runs this thread takes from `turns`, the shared count: each run's weight gradient into `found`,
    its images' input gradient into dx."""
    with blas.one_part():
        for k in turns:
            if k >= len(each):
                return
            first, last = each[k]
            found[k], mine = part(x[first:last], dz[first * pixels : last * pixels], input_grad)
            if input_grad:
                dx[first:last] = mine


def unrolled(data: np.ndarray, p: Plan):
    """(first output row, rows, group, the block's unrolled windows (rows, p.width)) for each block of `p` and
    each group, the windows copied into one buffer that is reused: read each before taking the next."""
    buffer = np.empty(conv_forward.largest_block(p) * p.width, dtype=data.dtype)
    out_h, out_w = p.out_hw
    for block in p.blocks:
        first, last, top, bottom = block
        n = (last - first) * (bottom - top) * out_w
        start = first * out_h * out_w + top * out_w
        for g in range(p.groups):
            yield start, n, g, conv_forward.unroll(data, p, block, g, buffer)


def weight_gradient(x: np.ndarray, dz: np.ndarray, filters: int, p: Plan) -> np.ndarray:
    """The weights' gradient (filters, channels of a group, kh, kw): dz against the unrolled windows, which
    are unrolled block by block (`Plan.blocks`) into one buffer, each block's product added while the
    block is in cache, in float64 (a float32 sum over a large batch's pixels would lose digits), so that
    nothing of the size of the whole unrolled matrix is made (ResNet-20 at batch 64: 38 MB a layer)."""
    data = conv_forward.padded(x, p)
    groups, size = p.groups, filters // p.groups
    dmatrix = np.zeros((groups, size, p.width), dtype=np.float64)
    part = np.empty((size, p.width), dtype=dz.dtype)
    for start, n, g, cols in unrolled(data, p):
        np.matmul(dz[start : start + n, g * size : (g + 1) * size].T, cols, out=part)
        dmatrix[g] += part
    ordered = dmatrix.astype(dz.dtype).reshape(filters, *p.kernel, p.per_group)  # columns are (kh, kw, channel)
    return ordered.transpose(0, 3, 1, 2)


def transposed_padding(p: Plan) -> list[int] | None:
    """[top, bottom, left, right] padding of the output gradient with which a stride-1 convolution's input
    gradient is itself a stride-1 convolution (of the flipped weights); None for other strides, or where
    the layer's padding is wider than its kernel's reach (a crop, not a padding)."""
    if p.stride != (1, 1):
        return None
    (top, bottom), (left, right) = p.padding
    reach_h, reach_w = (p.kernel[0] - 1) * p.dilation[0], (p.kernel[1] - 1) * p.dilation[1]
    pads = [reach_h - top, reach_h - bottom, reach_w - left, reach_w - right]
    return pads if min(pads) >= 0 else None


def both_gradients(x: np.ndarray, dz: np.ndarray, w: np.ndarray, p: Plan, pads: list[int]):
    """(weights' gradient, input gradient channels-last) of a stride-1 convolution from ONE unrolling:
    the output gradient's windows (padded by `pads`), block by block, each block multiplied by the
    flipped weights (its rows of the input gradient, as `input_gradient`) and by the input pixels those
    rows stand for (their share of the weights' gradient: dW[f, c, i, j] = Σ_pixel x[pixel, c] ·
    dz[pixel − (i, j) + pads, f]). The input's windows are never unrolled, nor the input padded."""
    groups, (kh, kw), filters, per_group = p.groups, p.kernel, len(w), p.per_group
    size, batch, (out_h, out_w) = filters // groups, p.batch, p.out_hw
    flipped = w.reshape(groups, size, per_group, kh, kw)[..., ::-1, ::-1].transpose(0, 2, 3, 4, 1)
    flipped = np.ascontiguousarray(flipped).reshape(groups, per_group, kh * kw * size)  # columns (kh, kw, filter)
    image = dz.reshape(batch, out_h, out_w, filters).transpose(0, 3, 1, 2)
    q = conv_forward.plan(image.shape, p.kernel, (1, 1), p.dilation, pads, groups, dz.itemsize, p.channels)
    data = conv_forward.padded(image, q)
    pixels = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).reshape(-1, p.channels)
    dx = np.empty((len(pixels), p.channels), dtype=dz.dtype)
    dmatrix = np.zeros((groups, per_group, q.width), dtype=np.float64)
    part = np.empty((per_group, q.width), dtype=dz.dtype)
    for start, n, g, cols in unrolled(data, q):
        channels = slice(g * per_group, (g + 1) * per_group)
        np.matmul(cols, flipped[g].T, out=dx[start : start + n, channels])
        np.matmul(pixels[start : start + n, channels].T, cols, out=part)
        dmatrix[g] += part
    # dmatrix[g]: (channels of the group, flipped kernel row, flipped kernel column, filter of the group)
    dweights = dmatrix.astype(dz.dtype).reshape(groups, per_group, kh, kw, size)[:, :, ::-1, ::-1]
    dweights = dweights.transpose(0, 4, 1, 2, 3).reshape(filters, per_group, kh, kw)
    return dweights, dx.reshape(batch, *q.out_hw, p.channels)
