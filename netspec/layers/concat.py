"""The concat layer: two or more inputs joined along channels (images) or features (vectors), then the activation."""

import sys
from collections.abc import Callable
from typing import Literal

import numpy as np

from netspec.errors import Unlocated
from netspec.layers.kind import Shape
from netspec.layers.merge import ActivatedMerge, Merge, activated, in_place_activation, onnx_activation, shape_text


class Concat(ActivatedMerge):
    """Joins its inputs along channels, or along features for vectors (Inception's and DenseNet's branches)."""

    type: Literal["concat"] = "concat"
    """Layer type."""


def output_shape(layer: Concat, input_shapes: list[Shape]) -> Shape:
    first = input_shapes[0]
    for at, shape in enumerate(input_shapes[1:], 1):
        if len(shape) != len(first):
            raise Unlocated(
                "NS126",
                f"concat cannot join {shape_text(shape)} from {{sources[{at}]}} to {shape_text(first)} from "
                f"{{sources[0]}}: an image and a vector; a flatten or global_avgpool makes the image a vector",
                ("inputs", at),
            )
        if shape[1:] != first[1:]:
            raise Unlocated(
                "NS126",
                f"concat cannot join {shape_text(shape)} from {{sources[{at}]}} to {shape_text(first)} from "
                f"{{sources[0]}}: it joins channels, so height and width must agree; "
                "a pooling or a stride on one of them changes its size",
                ("inputs", at),
            )
    return (sum(shape[0] for shape in input_shapes), *first[1:])


def multiply_adds(layer: Concat, input_shapes: list[Shape]) -> int:
    return 0


def forward(layer: Concat, inputs: list[np.ndarray]):
    """The joined inputs, and the function giving each input its slice of the gradient."""
    y, back = activated(layer, np.concatenate(inputs, axis=1))
    ends = np.cumsum([x.shape[1] for x in inputs])[:-1]

    def backprop(dy: np.ndarray, preactivation: bool = False, input_grad: bool = True):
        if not input_grad:
            return [None for _ in inputs]
        return np.split(back(dy, preactivation), ends, axis=1)

    return y, backprop


def runner(layer: Concat) -> Callable[..., np.ndarray]:
    activation = in_place_activation(layer)
    return lambda *inputs: activation(np.concatenate(inputs, axis=1))  # a new array: safe to change in place


def to_onnx(node, inputs: list[str], emit) -> str:
    z = emit.node("Concat", inputs, node.name, axis=1)
    return onnx_activation(node, z, emit)


KIND = Merge(Concat, sys.modules[__name__])
