"""Sliding windows over images, shared by convolution and pooling: padding, views and their gradients.

A window view has shape (batch, channels, out_height, out_width, kernel_height, kernel_width) and
is made by `numpy.lib.stride_tricks.sliding_window_view`, without copying. Gradients go back by
adding each kernel position's slice into the padded input: a loop over kernel positions (a few),
never over pixels or channels.
"""

import difflib
from typing import Annotated, Any, Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from pydantic import Field, PlainValidator
from pydantic_core import PydanticCustomError

from netspec.errors import Unlocated

Pair = tuple[int, int]


def _pixels(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _padding(value: Any) -> str | int | list[int]:
    from netspec.validation import show  # here: validation imports the layers

    # One check with one message: as a plain union, pydantic would report each member's failure.
    if value in ("valid", "same") and isinstance(value, str):
        return value
    if _pixels(value):
        return value
    if isinstance(value, list) and len(value) in (2, 4) and all(_pixels(n) for n in value):
        return list(value)
    close = difflib.get_close_matches(value.lower(), ["valid", "same"], n=1) if isinstance(value, str) else []
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise PydanticCustomError(
        "NS105",
        "must be valid, same, a number of pixels (0 or more), [height, width] or [top, bottom, left, right], "
        "got {got}{hint}",
        {"got": show(value) if isinstance(value, bool) or value is None else repr(value), "hint": hint},
    )


_PIXELS = Annotated[int, Field(ge=0)]

Padding = Annotated[
    Any,
    PlainValidator(
        _padding,
        json_schema_input_type=Literal["valid", "same"]
        | _PIXELS
        | Annotated[list[_PIXELS], Field(min_length=2, max_length=2)]
        | Annotated[list[_PIXELS], Field(min_length=4, max_length=4)],
    ),
]
"""`valid` (none), `same` (the output keeps ceil(size / stride)), pixels on every side, [height, width]
(pixels above and below, left and right, as PyTorch's padding=(h, w)), or [top, bottom, left, right]."""

SIDES = ("top", "bottom", "left", "right")
"""The sides a padding of four numbers gives, in its order."""


def explicit(padding: int | list[int]) -> tuple[Pair, Pair]:
    """((top, bottom), (left, right)) of a padding given in pixels: one number, [height, width] or four sides."""
    if isinstance(padding, int):
        return (padding, padding), (padding, padding)
    if len(padding) == 2:
        return (padding[0], padding[0]), (padding[1], padding[1])
    top, bottom, left, right = padding
    return (top, bottom), (left, right)


def pads(size: int, kernel: int, stride: int, dilation: int, padding: Padding, axis: int = 0) -> Pair:
    """Pixels added before and after one axis, 0 for height and 1 for width (TensorFlow's rule for `same`:
    any odd pixel goes after)."""
    if padding == "valid":
        return 0, 0
    if padding == "same":
        span = dilation * (kernel - 1) + 1
        out = -(-size // stride)
        total = max((out - 1) * stride + span - size, 0)
        return total // 2, total - total // 2
    return explicit(padding)[axis]


def out_size(size: int, kernel: int, stride: int, dilation: int, before_after: Pair, ceil: bool = False) -> int:
    """Windows along one axis; with `ceil`, PyTorch's and Caffe's rounding up (ceil_mode=True).

    Rounding up lets the last window run past the end; as in PyTorch, a window that would start
    in the padding after the input (or past it) is left out, so every window reads the input.
    """
    span = dilation * (kernel - 1) + 1
    room = size + sum(before_after) - span
    if not ceil or room < 0:  # a window larger than the padded input does not fit either way
        return room // stride + 1
    out = -(-room // stride) + 1
    if (out - 1) * stride >= size + before_after[0]:
        out -= 1
    return out


def geometry(
    input_shape: tuple[int, ...], kernel: Pair, stride: Pair, dilation: Pair, padding: Padding, ceil: bool = False
):
    """(pads for height and width, output height and width) for a (channels, height, width) input.

    With `ceil` (pooling's ceil_mode), the pads after the input grow by what the last window runs
    past the end: those are the pads a window view needs, while ONNX's `pads` are the declared ones.
    """
    if len(input_shape) != 3:
        raise Unlocated(
            "NS126",
            f"needs an image-shaped input (channels, height, width), but gets {shown(input_shape)} from {{source}}; "
            "image layers go before any flatten, on an image input",
        )
    found_pads, found_out = [], []
    for axis, size in enumerate(input_shape[1:]):
        before, after = pads(size, kernel[axis], stride[axis], dilation[axis], padding, axis)
        out = out_size(size, kernel[axis], stride[axis], dilation[axis], (before, after), ceil)
        span = dilation[axis] * (kernel[axis] - 1) + 1
        after = max(after, (out - 1) * stride[axis] + span - size - before)
        found_pads.append((before, after))
        found_out.append(out)
    return tuple(found_pads), tuple(found_out)


def padded(x: np.ndarray, padding: tuple[Pair, Pair], fill=0.0, axes: Pair = (2, 3)) -> np.ndarray:
    """x with `padding` ((top, bottom), (left, right)) around its `axes`, filled with `fill`: x itself if none.

    One new array, its inside copied once and only its borders filled (np.pad does several passes).
    """
    (top, bottom), (left, right) = padding
    if not (top or bottom or left or right):
        return x
    shape = list(x.shape)
    height, width = shape[axes[0]], shape[axes[1]]
    shape[axes[0]], shape[axes[1]] = height + top + bottom, width + left + right
    out = np.empty(shape, dtype=x.dtype)

    def part(rows: slice, cols: slice) -> tuple[slice, ...]:
        where = [slice(None)] * x.ndim
        where[axes[0]], where[axes[1]] = rows, cols
        return tuple(where)

    everything, inside = slice(None), slice(left, left + width)
    out[part(slice(top, top + height), inside)] = x
    for border in (
        part(slice(0, top), everything),
        part(slice(top + height, None), everything),
        part(slice(top, top + height), slice(0, left)),
        part(slice(top, top + height), slice(left + width, None)),
    ):
        out[border] = fill
    return out


def view(x, kernel: Pair, stride: Pair, dilation: Pair, padding: tuple[Pair, Pair], fill=0.0, axes: Pair = (2, 3)):
    """The windows of a batch, and the padded input's shape.

    `axes` are the height and width axes: (2, 3) for (batch, channels, height, width), (1, 2) for
    (batch, height, width, channels). The window's own two axes are added last.
    """
    x = padded(x, padding, fill, axes)
    spans = (dilation[0] * (kernel[0] - 1) + 1, dilation[1] * (kernel[1] - 1) + 1)
    windows = sliding_window_view(x, spans, axis=axes)
    steps = [slice(None)] * x.ndim + [slice(None, None, dilation[0]), slice(None, None, dilation[1])]
    steps[axes[0]], steps[axes[1]] = slice(None, None, stride[0]), slice(None, None, stride[1])
    return windows[tuple(steps)], x.shape


def scatter(
    piece, kernel: Pair, out_shape, padded_shape, stride: Pair, dilation: Pair, padding, axes: Pair = (2, 3), dtype=None
):
    """The gradient of the input, summed from what each window position passes back.

    `piece(i, j)` gives the gradient for kernel position (i, j), shaped like the output (or
    broadcastable to it); each is added into the slice of the padded input that position read.
    """
    out_h, out_w = out_shape
    padded = np.zeros(padded_shape, dtype=dtype)
    where = [slice(None)] * len(padded_shape)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            where[axes[0]] = slice(i * dilation[0], i * dilation[0] + stride[0] * (out_h - 1) + 1, stride[0])
            where[axes[1]] = slice(j * dilation[1], j * dilation[1] + stride[1] * (out_w - 1) + 1, stride[1])
            padded[tuple(where)] += piece(i, j)
    (top, bottom), (left, right) = padding
    crop = [slice(None)] * len(padded_shape)
    crop[axes[0]] = slice(top, padded_shape[axes[0]] - bottom)
    crop[axes[1]] = slice(left, padded_shape[axes[1]] - right)
    return padded[tuple(crop)]


def shown(shape: tuple[int, ...]) -> str:
    """A shape as messages say it: '192 numbers' or '8×3×3'."""
    if len(shape) == 1:
        return f"{shape[0]:,} number" + ("" if shape[0] == 1 else "s")
    return "×".join(map(str, shape))
