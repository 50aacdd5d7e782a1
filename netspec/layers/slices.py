"""The slice layer: channels [start, stop) of an image, or features [start, stop) of a vector.

It is concat's inverse, along the same axis: ShuffleNet v2's `x1, x2 = x.chunk(2, dim=1)` is two
slice layers reading the same input, one taking the first half of the channels, one the second.
"""

import sys
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from netspec.errors import Problem, Unlocated
from netspec.fields import rule_error
from netspec.layers import common
from netspec.layers.common import LayerBase
from netspec.layers.kind import OneInput, dims


class Slice(LayerBase):
    """Channels (of an image) or features (of a vector) from `start` up to, not including, `stop`."""

    type: Literal["slice"] = "slice"
    """Layer type."""
    start: int = Field(default=0, ge=0, le=2**31 - 1)
    """The first channel (or feature) taken, counting from 0."""
    stop: int | None = Field(default=None, ge=1, le=2**31 - 1, examples=[58])
    """The channel (or feature) after the last one taken (default: the input's last, so all from start on)."""

    @model_validator(mode="after")
    def _not_empty(self) -> "Slice":
        if self.stop is not None and self.stop <= self.start:
            message = (
                f"stop {self.stop} is not after start {self.start}, so the slice would be empty; "
                f"give a stop above {self.start} (it is the first channel not taken)"
            )
            raise rule_error([Problem("NS104", message, ("stop",))])
        return self


def bounds(layer: Slice, input_shape: tuple[int, ...]) -> tuple[int, int]:
    """(start, stop) of the slice along the first axis of `input_shape` (stop filled in)."""
    return layer.start, input_shape[0] if layer.stop is None else layer.stop


def output_shape(layer: Slice, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    count = input_shape[0]
    what = "channels" if len(input_shape) > 1 else "features"
    if layer.stop is not None and layer.stop > count:
        raise Unlocated(
            "NS126",
            f"stop {layer.stop} is past the {count} {what} of the {{input}}; give a stop of at most {count}",
            ("stop",),
        )
    if layer.start >= count:
        raise Unlocated(
            "NS126",
            f"start {layer.start} is past the last of the {count} {what} of the {{input}} (numbered from 0); "
            f"give a start below {count}",
            ("start",),
        )
    start, stop = bounds(layer, input_shape)
    return (stop - start, *input_shape[1:])


param_shapes = common.no_param_shapes
fans = common.unit_fans
axis_meanings = common.no_axis_meanings
multiply_adds = common.no_multiply_adds


def forward(layer: Slice, params: dict[str, np.ndarray], x: np.ndarray, train: bool = False, rng=None):
    start, stop = bounds(layer, x.shape[1:])

    def backprop(dy, preactivation: bool = False, input_grad: bool = True):
        if not input_grad:
            return None, {}
        dx = np.zeros(x.shape, dtype=dy.dtype)  # the values not taken did not reach the output
        dx[:, start:stop] = dy
        return dx, {}

    # A copy (unless all is taken): the layers after it read contiguous arrays, and never write into x.
    return np.ascontiguousarray(x[:, start:stop]), backprop


def to_onnx(node, x: str, emit) -> str:
    """ONNX's Slice along axis 1, its starts, ends and axes as constant inputs (as opset 10 and later read them)."""
    name = node.name
    start, stop = bounds(node.spec, node.input_shape)
    inputs = [x] + [
        emit.constant(f"{name}.{key}", np.array([value], dtype=np.int64))
        for key, value in (("starts", start), ("ends", stop), ("axes", 1))
    ]
    return emit.node("Slice", inputs, name)


def caption(layer: Slice, output_shape: tuple[int, ...]) -> str:
    stop = "" if layer.stop is None else layer.stop
    return f"slice {layer.start}:{stop}\n{dims(output_shape)}"


KIND = OneInput(Slice, sys.modules[__name__])
