"""The flatten layer: (channels, height, width) → one vector, in that order (as PyTorch's Flatten)."""

import sys
from math import prod
from typing import Literal

import numpy as np

from netspec.layers import common
from netspec.layers.common import LayerBase
from netspec.layers.kind import OneInput, dims


class Flatten(LayerBase):
    """Turns an image-shaped input into a vector: channel by channel, row by row."""

    type: Literal["flatten"] = "flatten"
    """Layer type."""


def output_shape(layer: Flatten, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    return (prod(input_shape),)


param_shapes = common.no_param_shapes
fans = common.unit_fans
axis_meanings = common.no_axis_meanings
multiply_adds = common.no_multiply_adds


def forward(layer: Flatten, params: dict[str, np.ndarray], x: np.ndarray, train: bool = False, rng=None):
    def backprop(dy, preactivation: bool = False, input_grad: bool = True):
        return (dy.reshape(x.shape) if input_grad else None), {}

    return x.reshape(len(x), prod(x.shape[1:])), backprop


def to_onnx(node, x: str, emit) -> str:
    return emit.node("Flatten", [x], node.name, axis=1)


def caption(layer: Flatten, output_shape: tuple[int, ...]) -> str:
    return f"flatten\n{dims(output_shape)}"


KIND = OneInput(Flatten, sys.modules[__name__], passes="reshape")
