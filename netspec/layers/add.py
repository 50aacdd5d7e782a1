"""The add layer: two or more inputs of one shape, summed value by value (ResNet's shortcut), then the activation."""

import sys
from collections.abc import Callable
from typing import Literal

import numpy as np

from netspec.errors import Unlocated
from netspec.layers.kind import Shape
from netspec.layers.merge import ActivatedMerge, Merge, activated, in_place_activation, onnx_activation, shape_text


class Add(ActivatedMerge):
    """Sums its inputs, which all have one shape (as Keras's Add and ONNX's Add/Sum)."""

    type: Literal["add"] = "add"
    """Layer type."""


def output_shape(layer: Add, input_shapes: list[Shape]) -> Shape:
    first = input_shapes[0]
    for at, shape in enumerate(input_shapes[1:], 1):
        if shape != first:
            raise Unlocated(
                "NS126",
                f"add cannot add {shape_text(shape)} from {{sources[{at}]}} to {shape_text(first)} from "
                f"{{sources[0]}}; it adds inputs of one shape: {_fix(first, shape)}",
                ("inputs", at),
            )
    return first


def _fix(first: Shape, other: Shape) -> str:
    """How two shapes that cannot be added are usually made to match."""
    if len(first) == len(other) == 3:
        return "a conv2d with kernel 1 on one of them changes its channels, and with a stride its height and width"
    if len(first) == len(other) == 1:
        return "a dense layer on one of them changes its length"
    return "a flatten or global_avgpool makes an image a vector"


def multiply_adds(layer: Add, input_shapes: list[Shape]) -> int:
    return 0


def forward(layer: Add, inputs: list[np.ndarray]):
    """The sum and the function giving each input its gradient: the sum's gradient, to every input alike."""
    z = inputs[0] + inputs[1]
    for x in inputs[2:]:
        z += x
    y, back = activated(layer, z)

    def backprop(dy: np.ndarray, preactivation: bool = False, input_grad: bool = True):
        dz = back(dy, preactivation)
        return [dz if input_grad else None for _ in inputs]

    return y, backprop


def runner(layer: Add) -> Callable[..., np.ndarray]:
    activation = in_place_activation(layer)

    def run(*inputs: np.ndarray) -> np.ndarray:
        z = inputs[0] + inputs[1]  # a new array: the inputs may be read by other layers
        for x in inputs[2:]:
            z += x
        return activation(z)

    return run


def to_onnx(node, inputs: list[str], emit) -> str:
    """Add for two inputs, Sum for more; then the activation."""
    z = emit.node("Add" if len(inputs) == 2 else "Sum", inputs, node.name)
    return onnx_activation(node, z, emit)


KIND = Merge(Add, sys.modules[__name__])
