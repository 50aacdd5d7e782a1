"""Local response normalisation: each value divided by a power of the squares of its neighbouring channels.

b_c = a_c / (k + alpha/size · Σ a_c'²)^beta, the sum over the `size` channels from c - size//2 to
c + (size-1)//2 (missing channels count as 0), as PyTorch's LocalResponseNorm (AlexNet, GoogLeNet).
"""

import sys
from math import prod
from typing import Literal

import numpy as np
from pydantic import Field

from netspec.fields import Count
from netspec.layers import common, windows
from netspec.layers.common import LayerBase
from netspec.layers.kind import OneInput, dims


class LRN(LayerBase):
    """Normalises each value by its neighbours across channels, as PyTorch's LocalResponseNorm and ONNX's LRN."""

    type: Literal["lrn"] = "lrn"
    """Layer type."""
    size: Count = Field(examples=[5])
    """Channels in each window: size // 2 before the channel, the channel, (size - 1) // 2 after."""
    alpha: float = Field(default=1e-4, ge=0)
    """Weight of the sum of squares, divided by size: b = a / (k + alpha/size · Σ a²)^beta."""
    beta: float = 0.75
    """The power the denominator is raised to."""
    k: float = Field(default=1.0, gt=0)
    """Added to the weighted sum of squares; above 0, so that the base of the power is."""


def _before_after(layer: LRN) -> tuple[int, int]:
    """Channels of the window before and after its own; for an even size one more before, as PyTorch pads."""
    return layer.size // 2, (layer.size - 1) // 2


def output_shape(layer: LRN, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    # PyTorch's LocalResponseNorm and ONNX's LRN read (batch, channels, height, width): refuse a
    # vector as every image layer does.
    windows.geometry(input_shape, (1, 1), (1, 1), (1, 1), "valid")
    return input_shape


param_shapes = common.no_param_shapes
fans = common.unit_fans
axis_meanings = common.no_axis_meanings


def multiply_adds(layer: LRN, input_shape: tuple[int, ...]) -> int:
    return prod(input_shape) * layer.size


def window_sum(v: np.ndarray, before: int, after: int) -> np.ndarray:
    """For each channel c of v (batch, channels, ...), the sum of channels c - before … c + after (0 past the ends)."""
    channels = v.shape[1]
    padded = np.pad(v, [(0, 0), (before, after)] + [(0, 0)] * (v.ndim - 2))
    total = padded[:, :channels].copy()
    for offset in range(1, before + after + 1):
        total += padded[:, offset : offset + channels]
    return total


def forward(layer: LRN, params: dict[str, np.ndarray], x: np.ndarray, train: bool = False, rng=None):
    before, after = _before_after(layer)
    base = layer.k + (layer.alpha / layer.size) * window_sum(x * x, before, after)
    scale = base**-layer.beta
    y = x * scale

    def backprop(dy, preactivation: bool = False, input_grad: bool = True):
        if not input_grad:
            return None, {}
        # x_j is in the window of the channels c with j - after ≤ c ≤ j + before: the transposed window.
        spread = window_sum(dy * y / base, after, before)
        return dy * scale - (2 * layer.alpha * layer.beta / layer.size) * x * spread, {}

    return y, backprop


def to_onnx(node, x: str, emit) -> str:
    """ONNX's LRN for an odd size; for an even size, the same arithmetic written out.

    ONNX's LRN puts the odd channel of an even window after (floor((size-1)/2) before), PyTorch's
    and netspec's before, and onnxruntime refuses even sizes: an even window is summed by a 1×1
    Conv whose constant weights pick each channel's window, already scaled by alpha/size.
    """
    layer, name = node.spec, node.name
    if layer.size % 2:
        return emit.node("LRN", [x], name, size=layer.size, alpha=layer.alpha, beta=layer.beta, bias=layer.k)
    channels = node.input_shape[0]
    before, after = _before_after(layer)
    c = np.arange(channels)
    band = (c[None, :] >= c[:, None] - before) & (c[None, :] <= c[:, None] + after)
    weights = (band * (layer.alpha / layer.size)).astype(emit.dtype)[:, :, None, None]
    squares = emit.node("Mul", [x, x], f"{name}.squares")
    summed = emit.node("Conv", [squares, emit.constant(f"{name}.window", weights)], f"{name}.window_sum")
    base = emit.node("Add", [summed, emit.constant(f"{name}.k", np.array(layer.k, emit.dtype))], f"{name}.base")
    power = emit.node("Pow", [base, emit.constant(f"{name}.beta", np.array(layer.beta, emit.dtype))], f"{name}.pow")
    return emit.node("Div", [x, power], name)


def caption(layer: LRN, output_shape: tuple[int, ...]) -> str:
    return f"lrn {layer.size}\n{dims(output_shape)}"


KIND = OneInput(LRN, sys.modules[__name__], passes="elementwise")
