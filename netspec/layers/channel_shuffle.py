"""Channel shuffle (ShuffleNet): the channels dealt out from `groups` groups in turn, as PyTorch's ChannelShuffle.

(C, H, W) is read as (groups, C/groups, H, W), its first two axes swapped, and flattened back: output
channel i·groups + g is input channel g·(C/groups) + i, so each group of the next grouped
convolution sees channels of every group of the last.
"""

import sys
from typing import Literal

import numpy as np
from pydantic import Field

from netspec.errors import Unlocated
from netspec.fields import Count
from netspec.layers import common, windows
from netspec.layers.common import LayerBase
from netspec.layers.kind import OneInput, dims


class ChannelShuffle(LayerBase):
    """Interleaves the channels of `groups` groups, as PyTorch's ChannelShuffle and ShuffleNet's channel_shuffle."""

    type: Literal["channel_shuffle"] = "channel_shuffle"
    """Layer type."""
    groups: Count = Field(examples=[3])
    """How many groups the channels form (they must divide the channels); output channel i·groups + g is
    channel i of group g."""


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def output_shape(layer: ChannelShuffle, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    windows.geometry(input_shape, (1, 1), (1, 1), (1, 1), "valid")  # refuses a vector, as image layers do
    channels = input_shape[0]
    if channels % layer.groups:
        which = f"one of {', '.join(map(str, _divisors(channels)))}" if channels <= 10_000 else "a divisor of it"
        raise Unlocated(
            "NS126",
            f"groups {layer.groups} does not divide the {channels} channels of the {{input}}; use {which}",
            ("groups",),
        )
    return input_shape


param_shapes = common.no_param_shapes
fans = common.unit_fans
axis_meanings = common.no_axis_meanings
multiply_adds = common.no_multiply_adds


def _shuffle(x: np.ndarray, groups: int) -> np.ndarray:
    """(batch, C, H, W) with the channels of `groups` groups of C/groups interleaved."""
    n, c, h, w = x.shape
    return x.reshape(n, groups, c // groups, h, w).transpose(0, 2, 1, 3, 4).reshape(n, c, h, w)


def forward(layer: ChannelShuffle, params: dict[str, np.ndarray], x: np.ndarray, train: bool = False, rng=None):
    def backprop(dy, preactivation: bool = False, input_grad: bool = True):
        # The inverse permutation: C/groups groups of `groups`, interleaved back.
        return (_shuffle(dy, x.shape[1] // layer.groups) if input_grad else None), {}

    return _shuffle(x, layer.groups), backprop


def to_onnx(node, x: str, emit) -> str:
    """Reshape to (batch, groups, C/groups, H, W), Transpose, Reshape back: ShuffleNet's own graph.

    The batch axis is written 0 (copy the input's), so the model takes any batch size.
    """
    name, groups = node.name, node.spec.groups
    channels, height, width = node.input_shape
    split = np.array([0, groups, channels // groups, height, width], dtype=np.int64)
    grouped = emit.node("Reshape", [x, emit.constant(f"{name}.grouped_shape", split)], f"{name}.grouped")
    swapped = emit.node("Transpose", [grouped], f"{name}.transpose", perm=[0, 2, 1, 3, 4])
    back = np.array([0, channels, height, width], dtype=np.int64)
    return emit.node("Reshape", [swapped, emit.constant(f"{name}.shape", back)], name)


def caption(layer: ChannelShuffle, output_shape: tuple[int, ...]) -> str:
    return f"channel_shuffle {layer.groups}\n{dims(output_shape)}"


KIND = OneInput(ChannelShuffle, sys.modules[__name__])
