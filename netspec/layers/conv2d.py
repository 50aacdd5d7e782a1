"""The 2-D convolution layer: each filter slides over the image, Output = Weight·Window + Bias."""

import sys
from collections.abc import Callable
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from netspec.errors import Unlocated, with_article
from netspec.fields import Count, GlorotUniform, Seed, param_source, rule_error
from netspec.layers import windows
from netspec.layers.activations import ACTIVATIONS, ActivationName
from netspec.layers.common import LayerBase, Size2D, activation_to_onnx, alpha_of, alpha_problems
from netspec.layers.kind import OneInput, dims


class Conv2D(LayerBase):
    """A convolution over a (channels, height, width) input, as PyTorch's Conv2d and ONNX's Conv."""

    type: Literal["conv2d"] = "conv2d"
    """Layer type."""
    filters: Count
    """How many filters (output channels) the layer has."""
    kernel: Size2D
    """Kernel size: one number for a square kernel, or [height, width]."""
    stride: Size2D = Field(default_factory=lambda: [1, 1])
    """Step between windows: one number, or [height, width]."""
    padding: windows.Padding = "valid"
    """valid (no padding), same (the output keeps ceil(size / stride)), or pixels added on each side."""
    dilation: Size2D = Field(default_factory=lambda: [1, 1])
    """Spacing between kernel elements: one number, or [height, width]."""
    activation: ActivationName = "linear"
    """Function applied to Weight·Window + Bias."""
    alpha: float | None = Field(default=None, ge=0)
    """Slope for negative inputs of leaky_relu (default 0.01); only leaky_relu takes it."""
    weights: param_source(4) = Field(default_factory=lambda: GlorotUniform(init="glorot_uniform"))
    """Shaped (filters, input channels, kernel height, kernel width), as PyTorch and ONNX store them."""
    bias: param_source(1) = 0.0
    """One value per filter, or any other form."""
    seed: Seed | None = None
    """Seed for this layer's initializers (default: derived from the spec's seed and the layer name)."""

    @model_validator(mode="after")
    def _alpha_needs_leaky_relu(self) -> "Conv2D":
        problems = alpha_problems(self.activation, self.alpha)
        if problems:
            raise rule_error(problems)
        return self


def _geometry(layer: Conv2D, input_shape: tuple[int, ...]):
    return windows.geometry(input_shape, tuple(layer.kernel), tuple(layer.stride), tuple(layer.dilation), layer.padding)


def output_shape(layer: Conv2D, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    _, (out_h, out_w) = _geometry(layer, input_shape)
    if out_h < 1 or out_w < 1:
        kh, kw = layer.kernel
        (dh, dw), what = layer.dilation, with_article(f"{kh}×{kw} kernel")
        if (dh, dw) != (1, 1):
            what += f" with dilation {dh}×{dw} spans {dh * (kh - 1) + 1}×{dw * (kw - 1) + 1} and"
        raise Unlocated(
            "NS126",
            f"{what} does not fit the {input_shape[1]}×{input_shape[2]} {{input}} "
            "(try padding: same or a smaller kernel)",
            ("kernel",),
        )
    return (layer.filters, out_h, out_w)


def param_shapes(layer: Conv2D, input_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    return {"weights": (layer.filters, input_shape[0], *layer.kernel), "bias": (layer.filters,)}


def fans(layer: Conv2D, input_shape: tuple[int, ...]) -> tuple[int, int]:
    """fan_in = input channels × kernel area and fan_out = filters × kernel area, as Keras and PyTorch count them."""
    area = layer.kernel[0] * layer.kernel[1]
    return input_shape[0] * area, layer.filters * area


def axis_meanings(layer: Conv2D) -> dict[str, tuple[str, ...]]:
    return {"weights": ("filter", "input channel", "kernel row", "kernel column"), "bias": ("filter",)}


def multiply_adds(layer: Conv2D, input_shape: tuple[int, ...]) -> int:
    filters, out_h, out_w = output_shape(layer, input_shape)
    return filters * out_h * out_w * input_shape[0] * layer.kernel[0] * layer.kernel[1]


def _unrolled(layer: Conv2D, params: dict[str, np.ndarray], x: np.ndarray):
    """The windows as rows (im2col), the weights as a matrix, and z = Weight·Window + Bias for every window."""
    w = params["weights"]
    kernel, stride, dilation = tuple(layer.kernel), tuple(layer.stride), tuple(layer.dilation)
    padding, (out_h, out_w) = _geometry(layer, x.shape[1:])
    view, padded_shape = windows.view(x.transpose(0, 2, 3, 1), kernel, stride, dilation, padding, axes=(1, 2))
    # (batch, out_h, out_w, channels, kh, kw) → rows of (kh, kw, channels)
    rows = x.shape[0] * out_h * out_w
    columns = view.transpose(0, 1, 2, 4, 5, 3).reshape(rows, kernel[0] * kernel[1] * x.shape[1])
    matrix = w.transpose(0, 2, 3, 1).reshape(len(w), -1)
    z = columns @ matrix.T
    z += params["bias"]
    return columns, matrix, z, (out_h, out_w), padding, padded_shape


def runner(layer: Conv2D, params: dict[str, np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """The function that runs the layer on a batch: the activation in place, nothing kept for backprop.

    Like dense's runner it holds `params` itself, so in-place changes to the arrays are seen.
    """
    activation = ACTIVATIONS[layer.activation].in_place
    alpha = alpha_of(layer)

    def run(x: np.ndarray) -> np.ndarray:
        _, _, z, (out_h, out_w), _, _ = _unrolled(layer, params, x)
        return activation(z, alpha).reshape(x.shape[0], out_h, out_w, layer.filters).transpose(0, 3, 1, 2)

    return run


def forward(layer: Conv2D, params: dict[str, np.ndarray], x: np.ndarray, train: bool = False, rng=None):
    """Outputs (batch, filters, out_height, out_width), and the backprop function (see dense.forward).

    The windows are unrolled into one matrix (im2col), so the whole layer is one matrix product.
    It is done channels-last, where each window row is a run of contiguous channel values: the
    unrolling then reads memory in order, which is what makes it fast.
    """
    w = params["weights"]
    kernel, stride, dilation = tuple(layer.kernel), tuple(layer.stride), tuple(layer.dilation)
    columns, matrix, z, (out_h, out_w), padding, padded_shape = _unrolled(layer, params, x)
    batch, channels = x.shape[0], x.shape[1]
    act = ACTIVATIONS[layer.activation]
    alpha = alpha_of(layer)
    y_rows = act.forward(z, alpha)
    y = y_rows.reshape(batch, out_h, out_w, len(w)).transpose(0, 3, 1, 2)  # not -1: empty batches too

    def backprop(dy: np.ndarray, preactivation: bool = False, input_grad: bool = True):
        flat_dy = dy.transpose(0, 2, 3, 1).reshape(-1, dy.shape[1])
        dz = flat_dy if preactivation else act.backward(z, y_rows, flat_dy, alpha)
        dmatrix = (dz.T @ columns).reshape(len(w), kernel[0], kernel[1], channels)
        grads = {"weights": dmatrix.transpose(0, 3, 1, 2), "bias": dz.sum(axis=0)}
        if not input_grad:
            return None, grads
        dcolumns = (dz @ matrix).reshape(batch, out_h, out_w, *kernel, channels)
        dx = windows.scatter(
            lambda i, j: dcolumns[:, :, :, i, j, :],
            kernel,
            (out_h, out_w),
            padded_shape,
            stride,
            dilation,
            padding,
            axes=(1, 2),
            dtype=dz.dtype,
        )
        return dx.transpose(0, 3, 1, 2), grads

    return y, backprop


def to_onnx(node, x: str, emit) -> str:
    """Conv with the padding written out per side (ONNX orders pads as all the starts, then all the ends)."""
    layer, name = node.spec, node.name
    (top, bottom), (left, right) = _geometry(layer, node.input_shape)[0]
    weights, bias = (
        emit.constant(f"{name}.weights", node.params["weights"]),
        emit.constant(f"{name}.bias", node.params["bias"]),
    )
    z = emit.node(
        "Conv",
        [x, weights, bias],
        f"{name}.conv",
        kernel_shape=list(layer.kernel),
        strides=list(layer.stride),
        dilations=list(layer.dilation),
        pads=[top, left, bottom, right],
    )
    return activation_to_onnx(layer, z, len(node.output_shape), emit)


def caption(layer: Conv2D, output_shape: tuple[int, ...]) -> str:
    return f"conv2d {layer.filters}@{layer.kernel[0]}×{layer.kernel[1]}, {layer.activation}\n{dims(output_shape)}"


KIND = OneInput(Conv2D, sys.modules[__name__], decayed=frozenset({"weights"}), neurons="kernel")
