"""The dropout layer: while training, zero a random `rate` of the values and scale up the rest."""

import sys
from typing import Literal

import numpy as np
from pydantic import Field

from netspec.layers import common
from netspec.layers.common import LayerBase
from netspec.layers.kind import OneInput, dims


class Dropout(LayerBase):
    """Active only while training (inverted dropout, as PyTorch); running the network leaves values as they are."""

    type: Literal["dropout"] = "dropout"
    """Layer type."""
    rate: float = Field(ge=0, lt=1)
    """Fraction of the values set to 0 while training; the others are divided by (1 - rate)."""


def output_shape(layer: Dropout, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    return input_shape


param_shapes = common.no_param_shapes
fans = common.unit_fans
axis_meanings = common.no_axis_meanings
multiply_adds = common.no_multiply_adds


def forward(layer: Dropout, params: dict[str, np.ndarray], x: np.ndarray, train: bool = False, rng=None):
    """The identity when running; while training, `rng` (seeded by the trainer) draws the mask."""
    if not train or layer.rate == 0:
        return x, lambda dy, preactivation=False, input_grad=True: (dy if input_grad else None, {})
    rng = rng if rng is not None else np.random.default_rng()
    keep = (rng.random(x.shape) >= layer.rate).astype(x.dtype) / (1 - layer.rate)

    def backprop(dy, preactivation: bool = False, input_grad: bool = True):
        return (dy * keep if input_grad else None), {}

    return x * keep, backprop


def to_onnx(node, x: str, emit) -> str:
    ratio = emit.constant(f"{node.name}.ratio", np.array(node.spec.rate, dtype=emit.dtype))
    return emit.node("Dropout", [x, ratio], node.name)


def caption(layer: Dropout, output_shape: tuple[int, ...]) -> str:
    return f"dropout {layer.rate:g}\n{dims(output_shape)}"


KIND = OneInput(Dropout, sys.modules[__name__], passes="elementwise")
