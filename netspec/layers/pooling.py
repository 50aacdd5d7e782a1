"""Pooling layers: the largest or the mean value of each window, and the mean of each channel."""

import sys
from typing import Literal

import numpy as np
from pydantic import model_validator

from netspec.errors import Unlocated, with_article
from netspec.layers import common, windows
from netspec.layers.common import LayerBase, Size2D
from netspec.layers.kind import OneInput, dims


class _Pool(LayerBase):
    size: Size2D
    """Window size: one number for a square window, or [height, width]."""
    stride: Size2D | None = None
    """Step between windows (default: the window size, so windows do not overlap)."""
    padding: windows.Padding = "valid"
    """valid (no padding), same, pixels on every side, [height, width] or [top, bottom, left, right];
    padding never counts as a value."""
    ceil_mode: bool = False
    """Round the number of windows up, as Caffe and PyTorch's ceil_mode=True: the last window may run
    past the bottom or right edge (cells outside are not counted), but one that would start in the
    padding after the input is left out, as in PyTorch."""

    @model_validator(mode="after")
    def _stride_defaults_to_size(self):
        if self.stride is None:
            self.stride = list(self.size)
        return self


class MaxPool2D(_Pool):
    """The largest value of each window, per channel."""

    type: Literal["maxpool2d"] = "maxpool2d"
    """Layer type."""


class AvgPool2D(_Pool):
    """The mean of each window, per channel (padding cells are not counted)."""

    type: Literal["avgpool2d"] = "avgpool2d"
    """Layer type."""


class GlobalAvgPool(LayerBase):
    """The mean of each channel: (channels, height, width) → (channels,)."""

    type: Literal["global_avgpool"] = "global_avgpool"
    """Layer type."""


NO_DILATION = (1, 1)


def _geometry(layer: _Pool, input_shape: tuple[int, ...]):
    size, stride = tuple(layer.size), tuple(layer.stride)
    return windows.geometry(input_shape, size, stride, NO_DILATION, layer.padding, layer.ceil_mode)


def _too_much_padding(layer: _Pool) -> str | None:
    """Why the padding would leave some window with padding only (more than half the window on a side), or None."""
    padding, (h, w) = layer.padding, layer.size
    if isinstance(padding, int):
        if padding * 2 > min(h, w):
            return f"padding {padding} is more than half the {h}×{w} window"
        return None
    if isinstance(padding, str):
        return None  # 'same' pads at most half the window, 'valid' not at all
    sides = dict(zip(windows.SIDES, (n for pair in windows.explicit(padding) for n in pair)))
    for side, pixels in sides.items():
        window = h if side in ("top", "bottom") else w
        if pixels * 2 > window:
            where = "on the left" if side == "left" else "on the right" if side == "right" else f"at the {side}"
            return f"padding {padding} puts {pixels} pixels {where}, more than half the {h}×{w} window"
    return None


def output_shape(layer, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    if isinstance(layer, GlobalAvgPool):
        windows.geometry(input_shape, (1, 1), (1, 1), NO_DILATION, "valid")  # refuses a vector, as image layers do
        return (input_shape[0],)
    too_much = _too_much_padding(layer)
    if too_much is not None:
        each = "" if isinstance(layer.padding, int) else " on each side"
        raise Unlocated(
            "NS126",
            f"{too_much}, so some windows would hold padding only; use at most half the window size{each}",
            ("padding",),
        )
    _, (out_h, out_w) = _geometry(layer, input_shape)
    if out_h < 1 or out_w < 1:
        raise Unlocated(
            "NS126",
            f"{with_article(f'{layer.size[0]}×{layer.size[1]} window')} does not fit the "
            f"{input_shape[1]}×{input_shape[2]} {{input}} (try padding: same or a smaller size)",
            ("size",),
        )
    return (input_shape[0], out_h, out_w)


param_shapes = common.no_param_shapes
fans = common.unit_fans
axis_meanings = common.no_axis_meanings
multiply_adds = common.no_multiply_adds  # comparisons and additions, no multiplications by weights


def forward(layer, params: dict[str, np.ndarray], x: np.ndarray, train: bool = False, rng=None):
    """Pooled outputs, and the backprop function (see dense.forward); pooling has no parameters."""
    if isinstance(layer, GlobalAvgPool):
        area = x.shape[2] * x.shape[3]

        def global_backprop(dy, preactivation: bool = False, input_grad: bool = True):
            dx = np.broadcast_to((dy / area)[:, :, None, None], x.shape).copy() if input_grad else None
            return dx, {}

        return x.mean(axis=(2, 3)), global_backprop
    size, stride = tuple(layer.size), tuple(layer.stride)
    padding, _ = _geometry(layer, x.shape[1:])
    positions = [(i, j) for i in range(size[0]) for j in range(size[1])]
    # Work in the layout the values are stored in (a convolution leaves them channels-last), so
    # that each pass over a window position reads memory in order; no copy of every window is made.
    channels_last = x.transpose(0, 2, 3, 1)
    layout = (1, 2) if channels_last.flags.c_contiguous else (2, 3)
    data = channels_last if layout == (1, 2) else x

    def to_nchw(a):
        return a.transpose(0, 3, 1, 2) if layout == (1, 2) else a

    def to_layout(dy):
        return np.ascontiguousarray(dy.transpose(0, 2, 3, 1)) if layout == (1, 2) else dy

    def spread(piece, out_shape, padded_shape, dtype):
        """The input gradient from what each window position passes back, in (batch, channels, h, w)."""
        out_hw = out_shape[layout[0] : layout[1] + 1]
        return to_nchw(windows.scatter(piece, size, out_hw, padded_shape, stride, NO_DILATION, padding, layout, dtype))

    if isinstance(layer, MaxPool2D):
        view, padded_shape = windows.view(data, size, stride, NO_DILATION, padding, fill=-np.inf, axes=layout)
        y = view[..., 0, 0].copy()
        # While training, note which position held each maximum (the first, on ties, as PyTorch).
        best = np.zeros(y.shape, dtype=np.int16) if train else None
        for k, (i, j) in enumerate(positions[1:], start=1):
            if train:
                np.copyto(best, k, where=view[..., i, j] > y)
            np.maximum(y, view[..., i, j], out=y)

        def max_backprop(dy, preactivation: bool = False, input_grad: bool = True):
            if not input_grad:
                return None, {}
            dy = to_layout(dy)
            where = best if best is not None else _first_maximum(view, y, positions)

            def piece(i, j):  # each window's gradient goes to its maximum
                # A product with the mask: np.where with a scalar 0 casts on every element (10× slower).
                return dy * (where == positions.index((i, j)))

            return spread(piece, y.shape, padded_shape, dy.dtype), {}

        return to_nchw(y), max_backprop
    view, padded_shape = windows.view(data, size, stride, NO_DILATION, padding, axes=layout)
    ones_shape = [1] * 4
    ones_shape[layout[0]], ones_shape[layout[1]] = data.shape[layout[0]], data.shape[layout[1]]
    ones = np.ones(ones_shape, dtype=x.dtype)
    counts = windows.view(ones, size, stride, NO_DILATION, padding, axes=layout)[0].sum(axis=(-1, -2))  # not padding
    total = view[..., 0, 0].copy()
    for i, j in positions[1:]:
        total += view[..., i, j]
    y = total / counts

    def avg_backprop(dy, preactivation: bool = False, input_grad: bool = True):
        if not input_grad:
            return None, {}
        share = to_layout(dy) / counts
        return spread(lambda i, j: share, y.shape, padded_shape, share.dtype), {}

    return to_nchw(y), avg_backprop


def _first_maximum(view: np.ndarray, y: np.ndarray, positions: list[tuple[int, int]]) -> np.ndarray:
    """Which window position holds each maximum, the first on ties (for a backward pass outside training)."""
    best = np.full(y.shape, len(positions), dtype=np.int16)
    for k, (i, j) in reversed(list(enumerate(positions))):
        np.copyto(best, k, where=view[..., i, j] == y)
    return best


def to_onnx(node, x: str, emit) -> str:
    """MaxPool or AveragePool (padding not counted, as here), or GlobalAveragePool then Flatten."""
    layer, name = node.spec, node.name
    if isinstance(layer, GlobalAvgPool):
        return emit.node("Flatten", [emit.node("GlobalAveragePool", [x], f"{name}.pool")], name, axis=1)
    pads, ceil_mode = onnx_pads(layer, node.input_shape)
    attributes = {"kernel_shape": list(layer.size), "strides": list(layer.stride), "pads": pads}
    if ceil_mode:
        attributes["ceil_mode"] = 1
    if isinstance(layer, AvgPool2D):
        return emit.node("AveragePool", [x], name, count_include_pad=0, **attributes)
    return emit.node("MaxPool", [x], name, **attributes)


def onnx_pads(layer: _Pool, input_shape: tuple[int, ...]) -> tuple[list[int], bool]:
    """ONNX's pads (top, left, bottom, right) and ceil_mode that give this layer's windows.

    ONNX's shape rule for ceil_mode rounds up without leaving out a window that would start in the
    padding after the input, as PyTorch does (and onnxruntime computes): where the two counts
    differ, onnx's shape inference expects a larger output than the model computes. There the
    windows are written out instead: ceil_mode 0, and the pads after the input grown by what the
    last window runs past the end (cells that, as padding, are never counted).
    """
    used, out = _geometry(layer, input_shape)
    (top, bottom), (left, right) = used
    if layer.ceil_mode:
        declared = [
            windows.pads(n, k, s, 1, layer.padding, axis)
            for axis, (n, k, s) in enumerate(zip(input_shape[1:], layer.size, layer.stride))
        ]
        rounded_up = tuple(
            -(-(n + before + after - k) // s) + 1
            for n, k, s, (before, after) in zip(input_shape[1:], layer.size, layer.stride, declared)
        )
        if rounded_up == out:
            (top, bottom), (left, right) = declared
            return [top, left, bottom, right], True
    return [top, left, bottom, right], False


def caption(layer, output_shape: tuple[int, ...]) -> str:
    if isinstance(layer, GlobalAvgPool):
        return f"{layer.type}\n{dims(output_shape)}"
    return f"{layer.type} {layer.size[0]}×{layer.size[1]}\n{dims(output_shape)}"


_THIS = sys.modules[__name__]
MAX = OneInput(MaxPool2D, _THIS)
AVG = OneInput(AvgPool2D, _THIS)
GLOBAL = OneInput(GlobalAvgPool, _THIS)
