"""A convolution's forward kernels, channels-last: the input padded once, windows unrolled into columns,
1×1 convolutions as bare products (depthwise convolutions: netspec.layers.depthwise).

Everything that depends on the input's shape alone (pads, output size, slices, blocks) is worked out once
per shape and kept (`plan`): a small layer at batch 1 runs in tens of microseconds, where Python-level
set-up would otherwise cost as much as the arithmetic.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from netspec import threads as blas
from netspec.layers import windows

BLOCK_BYTES = 4 << 20
"""Largest unrolled block made at inference: the windows of a batch go through in blocks of this size, so
memory stays bounded (the 7×7 stem of ResNet-18 at batch 8 would unroll to ~59 MB) and the block is still
in cache when the product reads it."""

WEIGHT_HEAVY = 2.0
"""At inference, unroll the windows channel-major (channel, kernel row, kernel column), the weights' own
order, when the weights are this many times larger than the unrolled windows: reordering the weights
(deep layers at small sizes: 2.4 million numbers for a 512-filter 3×3) then costs more than unrolling in
the slower order saves."""

BLOCK_PER_WEIGHT = 2.0
"""A block's unrolled windows are at least this many times the weights: each block's product reads
(and BLAS packs) all the weights again, which for deep layers (9.4 MB for a 512-filter 3×3) would cost
more than a larger block."""


@dataclass(frozen=True)
class Plan:
    """What a convolution's forward needs to know about its input's shape, worked out once for each shape."""

    batch: int
    channels: int
    groups: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    padding: tuple[tuple[int, int], tuple[int, int]]
    """((top, bottom), (left, right)): the pads a window view needs."""
    padded_shape: tuple[int, int, int, int]
    """(batch, padded height, padded width, channels)."""
    out_hw: tuple[int, int]
    itemsize: int
    blocks: tuple[tuple[int, int, int, int], ...]
    """(first image, last image + 1, first output row, last output row + 1) of each block unrolled at inference."""
    inside: tuple[slice, ...]
    """Where the input goes in the padded input."""
    borders: tuple[tuple[slice, ...], ...]
    """The padded input's borders (zeros)."""

    @property
    def rows(self) -> int:
        return self.batch * self.out_hw[0] * self.out_hw[1]

    @property
    def per_group(self) -> int:
        return self.channels // self.groups

    @property
    def width(self) -> int:
        """Columns of one group's unrolled windows: kernel area × the group's channels."""
        return self.kernel[0] * self.kernel[1] * self.per_group

    @property
    def pointwise(self) -> bool:
        """1×1 and no padding: the (strided) input itself is the unrolled windows."""
        return self.kernel == (1, 1) and not self.borders

    def taps(self, rows: tuple[int, int] | None = None) -> list[tuple[int, int, slice, slice]]:
        """(kernel row, kernel column, the padded input's height slice, its width slice) for each kernel
        position: the input pixels that position reads, one per output pixel (of output `rows` if given)."""
        (sh, sw), (dh, dw), (out_h, out_w) = self.stride, self.dilation, self.out_hw
        first, last = rows if rows else (0, out_h)
        return [
            (
                i,
                j,
                slice(i * dh + first * sh, i * dh + (last - 1) * sh + 1, sh),
                slice(j * dw, j * dw + (out_w - 1) * sw + 1, sw),
            )
            for i in range(self.kernel[0])
            for j in range(self.kernel[1])
        ]

    def windows(self, data: np.ndarray, block=None, group: int | None = None, channel_major: bool = False):
        """The windows of the padded channels-last input `data` (C-contiguous), a view without a copy:
        (images, out_h, out_w, kh, kw, channels), or (…, channels, kh, kw) when `channel_major`; of the
        images and output rows of `block` only if given, of one group's channels if `group` is.

        Made from the strides directly: numpy's sliding_window_view costs tens of microseconds a call,
        as much as a small layer's arithmetic, and its copies run slower.
        """
        first, last, top, bottom = block if block else (0, self.batch, 0, self.out_hw[0])
        _, height, width, channels = self.padded_shape
        item = data.itemsize
        s_pixel, s_row, s_image = channels * item, width * channels * item, height * width * channels * item
        (sh, sw), (dh, dw), (kh, kw) = self.stride, self.dilation, self.kernel
        per = channels if group is None else self.per_group
        offset = first * s_image + top * sh * s_row + (0 if group is None else group * per * item)
        head, strides = (last - first, bottom - top, self.out_hw[1]), (s_image, sh * s_row, sw * s_pixel)
        if channel_major:
            shape, strides = (*head, per, kh, kw), (*strides, item, dh * s_row, dw * s_pixel)
        else:
            shape, strides = (*head, kh, kw, per), (*strides, dh * s_row, dw * s_pixel, item)
        if not data.size:  # an empty batch: no memory to view
            return np.empty(shape, data.dtype)
        return np.ndarray(shape, data.dtype, data, offset, strides)


def plan(
    shape: tuple[int, ...], kernel, stride, dilation, padding, groups: int, itemsize: int, filters: int = 0
) -> Plan:
    """The plan for an input of `shape` (batch, channels, height, width) and `filters` filters; `padding` as
    the layer gives it."""
    key = padding if isinstance(padding, str | int) else tuple(padding)
    return _plan(tuple(shape), tuple(kernel), tuple(stride), tuple(dilation), key, groups, itemsize, filters)


@functools.lru_cache(maxsize=1024)
def _plan(shape, kernel, stride, dilation, padding, groups: int, itemsize: int, filters: int) -> Plan:
    batch, channels, height, width = shape
    weight_bytes = filters * channels // groups * kernel[0] * kernel[1] * itemsize
    budget = max(BLOCK_BYTES, int(BLOCK_PER_WEIGHT * weight_bytes))
    given = padding if isinstance(padding, str | int) else list(padding)
    pads, (out_h, out_w) = windows.geometry(shape[1:], kernel, stride, dilation, given)
    (top, bottom), (left, right) = pads
    padded = (batch, height + top + bottom, width + left + right, channels)
    row_bytes = out_w * kernel[0] * kernel[1] * channels * itemsize
    image_bytes = out_h * row_bytes
    if image_bytes <= budget:
        step = max(1, budget // max(image_bytes, 1))
        blocks = tuple((b, min(b + step, batch), 0, out_h) for b in range(0, batch, step))
    else:
        step = max(1, budget // row_bytes)
        blocks = tuple((b, b + 1, r, min(r + step, out_h)) for b in range(batch) for r in range(0, out_h, step))
    every = slice(None)
    rows, cols = slice(top, top + height), slice(left, left + width)
    sides = [
        (slice(0, top), every),
        (slice(top + height, None), every),
        (rows, slice(0, left)),
        (rows, slice(left + width, None)),
    ]
    borders = tuple((every, *side, every) for side, size in zip(sides, (top, bottom, left, right)) if size)
    return Plan(
        batch, channels, groups, kernel, stride, dilation, pads, padded, (out_h, out_w), itemsize, blocks,
        (every, rows, cols, every), borders,
    )  # fmt: skip


def channels_last(x: np.ndarray) -> np.ndarray:
    """x (batch, channels, height, width) as (batch, height, width, channels): a view, contiguous when x
    is stored as a convolution leaves it."""
    return x.transpose(0, 2, 3, 1)


def padded(x: np.ndarray, p: Plan) -> np.ndarray:
    """The channels-last input with the plan's zero padding, C-contiguous: x's own memory when it needs
    neither padding nor reordering."""
    if not p.borders:
        return np.ascontiguousarray(channels_last(x))
    out = np.empty(p.padded_shape, dtype=x.dtype)
    out[p.inside] = channels_last(x)
    for border in p.borders:
        out[border] = 0
    return out


def window_view(data: np.ndarray, p: Plan) -> np.ndarray:
    """The windows of the padded channels-last input: (batch, out_h, out_w, channels, kh, kw), a view."""
    return p.windows(data, channel_major=True)


def columns(x: np.ndarray, p: Plan) -> np.ndarray:
    """The unrolled windows, (groups, rows, kh · kw · channels of the group), each row ordered (kernel row,
    kernel column, channel): a view of the input itself for a 1×1 convolution of stride 1, else one copy."""
    data = padded(x, p)
    if p.pointwise and p.stride == (1, 1):
        return data.reshape(p.rows, p.groups, p.per_group).transpose(1, 0, 2)
    out = np.empty((p.groups, p.rows, p.width), dtype=data.dtype)
    (out_h, out_w), (kh, kw) = p.out_hw, p.kernel
    for g in range(p.groups):
        shaped = out[g].reshape(p.batch, out_h, out_w, kh, kw, p.per_group)
        np.copyto(shaped, p.windows(data, group=g if p.groups > 1 else None))
    return out


def matrix(w: np.ndarray, p: Plan) -> np.ndarray:
    """The weights as (groups, filters of the group, kh · kw · channels of the group), ordered as `columns`."""
    groups, filters = p.groups, len(w)
    if p.kernel == (1, 1):
        return w.reshape(groups, filters // groups, p.per_group)
    ordered = w.reshape(groups, filters // groups, p.per_group, *p.kernel).transpose(0, 1, 3, 4, 2)
    return ordered.reshape(groups, filters // groups, p.width)


def products(cols: np.ndarray, mat: np.ndarray, dtype) -> np.ndarray:
    """(rows, filters): each group's columns times its filters, side by side."""
    if len(cols) == 1:
        return cols[0] @ mat[0].T
    size = mat.shape[1]
    z = np.empty((cols.shape[1], len(mat) * size), dtype=dtype)
    for g in range(len(mat)):
        np.matmul(cols[g], mat[g].T, out=z[:, g * size : (g + 1) * size])
    return z


def inferred(
    x: np.ndarray,
    w: np.ndarray,
    p: Plan,
    bias: np.ndarray | None = None,
    finish: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """z (rows, filters) as `products(columns(x), matrix(w))` gives it, plus `bias` and then `finish` (the
    activation, in place), keeping nothing: the windows are unrolled block by block (`Plan.blocks`) into
    one reused buffer, each block's product written in place and finished while still in cache.

    Where more than one thread may run (netspec.threads.workers) and the layer has work enough to pay
    for the hand-offs (THREADS_FROM), the output rows are split evenly between the threads, each
    unrolling and multiplying its own blocks into its own buffer, BLAS on one thread in each.
    """
    groups, filters, size = p.groups, len(w), len(w) // p.groups
    data = padded(x, p)
    direct = p.pointwise and p.stride == (1, 1)  # the input's own rows are the columns
    channel_major = not direct and w.size > WEIGHT_HEAVY * p.rows * p.width
    mat = w.reshape(groups, size, p.width) if channel_major else matrix(w, p)
    z = np.empty((p.rows, filters), dtype=np.result_type(x, w))
    n = blas.workers() if p.batch >= THREADS_FROM_BATCH and p.rows * p.width * filters >= THREADS_FROM else 1
    if n > 1:
        # No more pieces than the rows allow: each piece's product reads (and BLAS packs) all the weights.
        count = min(n * PIECES_PER_THREAD, p.rows // max(ROWS_PER_FILTER * filters, 1))
        pieces = _shares(p.blocks, p.out_hw[0], count) if count > 1 else ()
        if len(pieces) > 1:
            # Each thread takes the next piece until none is left: a thread slowed by other work on its
            # core (a shared machine) takes fewer, rather than the others waiting for its fixed share.
            turns = itertools.count()
            run = functools.partial(_taking_turns, data, mat, z, p, direct, channel_major, bias, finish, pieces, turns)
            helpers = min(n, len(pieces)) - 1
            with blas.one_each():
                pending = [blas.pool(helpers).submit(run) for _ in range(helpers)]
                run()
                for done in pending:
                    done.result()
            return z
    _blocks(data, mat, z, p, direct, channel_major, bias, finish, p.blocks)
    return z


THREADS_FROM = 1 << 22
"""Multiply-adds of a convolution from which it is split between threads: a hand-off costs 20-50 µs."""

THREADS_FROM_BATCH = 8
"""Batches from which a convolution is split between threads. Measured (docs/performance.md): at batch 1
threads gain on an idle machine (ResNet-18 68 → 46-56 ms) but lose 10-15% while another process keeps a
core busy, and lose even idle on MobileNet V2 and SqueezeNet; from batch 8 they gain idle and break even
or gain with a core busy. Batches 2-7 were not measured."""

PIECES_PER_THREAD = 1
"""Pieces of the output rows per thread, taken in turn. More (4) would let a thread on a busy core take
fewer, but the smaller products measured slower (ResNet-20 at batch 64: 143 against 89 ms)."""

ROWS_PER_FILTER = 2
"""A piece has at least this many output rows per filter: deep layers at small sizes (49 rows, 512
filters, 9.4 MB of weights) would otherwise spend more packing the weights again than they gain."""


def _taking_turns(data, mat, z, p: Plan, direct, channel_major, bias, finish, pieces, turns) -> None:
    """The pieces (lists of blocks) this thread takes from `turns`, the shared count, one after another."""
    buffer = None if direct else np.empty(max(largest_block(p, piece) for piece in pieces) * p.width, data.dtype)
    for k in turns:
        if k >= len(pieces):
            return
        _blocks(data, mat, z, p, direct, channel_major, bias, finish, pieces[k], buffer)


def _blocks(data, mat, z, p: Plan, direct: bool, channel_major: bool, bias, finish, blocks, buffer=None) -> None:
    """`blocks`' rows of z: their windows unrolled block by block into one buffer, multiplied, finished."""
    groups, per_group, size = p.groups, p.per_group, mat.shape[1]
    out_h, out_w = p.out_hw
    image_rows = out_h * out_w
    flat = data.reshape(-1, p.channels)
    if buffer is None and not direct:
        buffer = np.empty(largest_block(p, blocks) * p.width, dtype=data.dtype)
    for block in blocks:
        first, last, top, bottom = block
        n = (last - first) * (bottom - top) * out_w
        start = first * image_rows + top * out_w
        rows = z[start : start + n]
        for g in range(groups):
            if direct:
                cols = flat[start : start + n, g * per_group : (g + 1) * per_group]
            else:
                cols = unroll(data, p, block, g, buffer, channel_major)
            np.matmul(cols, mat[g].T, out=rows[:, g * size : (g + 1) * size] if groups > 1 else rows)
        finished(rows, bias, finish)


@functools.lru_cache(maxsize=1024)
def _shares(blocks: tuple, out_h: int, n: int) -> tuple[tuple[tuple[int, int, int, int], ...], ...]:
    """A plan's blocks (of images of `out_h` output rows) split into (at most) `n` pieces of nearly equal
    output rows: each block's output rows (image by image, row by row) cut into n runs, each run as
    blocks again (a partial image, whole images, a partial image)."""
    shares: list[list[tuple[int, int, int, int]]] = [[] for _ in range(n)]
    for first, last, top, bottom in blocks:
        start, end = first * out_h + top, (last - 1) * out_h + bottom  # rows of the batch's stacked images
        cuts = [start + (end - start) * k // n for k in range(n + 1)]
        for k in range(n):
            a, b = cuts[k], cuts[k + 1]
            while a < b:
                image, row = divmod(a, out_h)
                if row or b - a < out_h:  # a partial image
                    stop = min(b, (image + 1) * out_h)
                    shares[k].append((image, image + 1, row, stop - image * out_h))
                else:  # whole images
                    stop = b - (b - a) % out_h
                    shares[k].append((image, stop // out_h, 0, out_h))
                a = stop
    return tuple(tuple(share) for share in shares if share)


def largest_block(p: Plan, blocks=None) -> int:
    """Output rows of the largest of `blocks` (the plan's own by default): a buffer of this many rows of
    `p.width` values holds any block's unrolled windows."""
    blocks = p.blocks if blocks is None else blocks
    return max(((last - first) * (bottom - top) * p.out_hw[1] for first, last, top, bottom in blocks), default=0)


def unroll(data: np.ndarray, p: Plan, block, g: int, buffer: np.ndarray, channel_major: bool = False) -> np.ndarray:
    """The windows of `block` (of group g) copied into the start of `buffer` (see `largest_block`), as a
    (rows, p.width) matrix: valid until the buffer's next use."""
    windows = p.windows(data, block, g if p.groups > 1 else None, channel_major)
    cols = buffer[: windows.size]
    np.copyto(cols.reshape(windows.shape), windows)
    return cols.reshape(-1, p.width)


def finished(rows: np.ndarray, bias: np.ndarray | None, finish) -> None:
    """rows (pixels, filters) plus the bias, then finished in place."""
    if bias is not None:
        rows += bias
    if finish is not None:
        done = finish(rows)
        if done is not rows:
            rows[...] = done
