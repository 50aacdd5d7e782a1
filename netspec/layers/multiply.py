"""The multiply layer: two inputs multiplied value by value; a per-channel vector or map scales an image's channels.

A squeeze-and-excitation gate is global_avgpool → dense → dense (sigmoid) → multiply with the image,
as in Keras: the (C,) vector is broadcast over height and width.
"""

import sys
from collections.abc import Callable
from typing import Literal

import numpy as np

from netspec.errors import Unlocated
from netspec.layers.common import LayerBase
from netspec.layers.kind import Shape
from netspec.layers.merge import Merge, shape_text


class Multiply(LayerBase):
    """Multiplies its two inputs: of one shape, or an image by one value per channel ((C,) or (C, 1, 1))."""

    type: Literal["multiply"] = "multiply"
    """Layer type."""


def _scales_channels(image: Shape, other: Shape) -> bool:
    """Whether `other` holds one value per channel of `image`: (C,) or (C, 1, 1)."""
    return len(image) == 3 and other in ((image[0],), (image[0], 1, 1))


def output_shape(layer: Multiply, input_shapes: list[Shape]) -> Shape:
    a, b = input_shapes
    if a == b or _scales_channels(a, b):
        return a
    if _scales_channels(b, a):
        return b
    image = a if len(a) == 3 else b if len(b) == 3 else None
    per_channel = f" or one value per channel, ({image[0]},) or ({image[0]}, 1, 1)" if image else ""
    raise Unlocated(
        "NS126",
        f"multiply cannot multiply {shape_text(a)} from {{sources[0]}} by {shape_text(b)} from {{sources[1]}}; "
        f"it multiplies inputs of one shape{per_channel}",
        ("inputs", 1),
    )


def multiply_adds(layer: Multiply, input_shapes: list[Shape]) -> int:
    return int(np.prod(output_shape(layer, input_shapes)))


def _broadcast(x: np.ndarray, rank: int) -> np.ndarray:
    """A batch of per-channel vectors as (batch, C, 1, 1), to scale (batch, C, H, W); others as they are."""
    return x.reshape(*x.shape, *(1,) * (rank - x.ndim)) if x.ndim < rank else x


def forward(layer: Multiply, inputs: list[np.ndarray]):
    """The product, and the function giving each input its gradient (the product rule); an input that was
    broadcast over height and width gets its gradient summed over them."""
    a, b = inputs
    rank = max(a.ndim, b.ndim)
    wide_a, wide_b = _broadcast(a, rank), _broadcast(b, rank)
    y = wide_a * wide_b

    def backprop(dy: np.ndarray, preactivation: bool = False, input_grad: bool = True):
        if not input_grad:
            return [None, None]
        return [_unbroadcast(dy * wide_b, a), _unbroadcast(dy * wide_a, b)]

    return y, backprop


def _unbroadcast(grad: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The gradient of an input that was broadcast over height and width: summed over them, in its own shape."""
    if grad.shape == x.shape:
        return grad
    return grad.sum(axis=(2, 3)).reshape(x.shape)


def runner(layer: Multiply) -> Callable[..., np.ndarray]:
    def run(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        rank = max(a.ndim, b.ndim)
        return _broadcast(a, rank) * _broadcast(b, rank)

    return run


def to_onnx(node, inputs: list[str], emit) -> str:
    """Mul, after an Unsqueeze to (batch, C, 1, 1) of an input that is one value per channel as a vector."""
    ranks = [len(shape) for shape in node.input_shapes]
    if ranks[0] != ranks[1]:
        axes = emit.constant(f"{node.name}.axes", np.array([2, 3], dtype=np.int64))
        at = ranks.index(1)
        inputs = list(inputs)
        inputs[at] = emit.node("Unsqueeze", [inputs[at], axes], f"{node.name}.unsqueeze")
    return emit.node("Mul", inputs, node.name)


KIND = Merge(Multiply, sys.modules[__name__], max_inputs=2)
