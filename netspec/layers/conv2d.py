"""The 2-D convolution layer: each filter slides over the image, Output = Weight·Window + Bias.

With `groups`, the channels are split into that many groups and each filter reads one group (as
PyTorch's Conv2d): a grouped convolution is one matrix product per group; with one group per
input channel (depthwise), it is a multiply-add over the channels for each kernel position.
"""

import functools
import sys
from collections.abc import Callable
from typing import Literal

import numpy as np
from pydantic import Field

from netspec.errors import Problem, Unlocated, plural, with_article
from netspec.fields import Count, GlorotUniform, Seed, param_source
from netspec.layers import conv_backward, conv_forward, depthwise, windows, winograd
from netspec.layers.activations import ACTIVATIONS, ActivationName
from netspec.layers.common import ActivatedLayer, Size2D, activation_to_onnx, alpha_of, bias_problems
from netspec.layers.kind import OneInput, dims
from netspec.layers.sums import column_sums


class Conv2D(ActivatedLayer):
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
    groups: Count = 1
    """Split the input channels and the filters into this many groups, each filter reading its group's
    channels only (PyTorch's groups); as many groups as input channels is a depthwise convolution."""
    activation: ActivationName = "linear"
    """Function applied to Weight·Window + Bias."""
    alpha: float | None = Field(default=None, ge=0)
    """leaky_relu's slope below 0 (default 0.01), or elu's alpha·(e^z − 1) below 0 (default 1); only they take it."""
    weights: param_source(4) = Field(default_factory=lambda: GlorotUniform(init="glorot_uniform"))
    """Shaped (filters, input channels / groups, kernel height, kernel width), as PyTorch and ONNX store them."""
    use_bias: bool = True
    """Whether the layer adds a bias (Keras's use_bias); false: Weight·Window alone and no bias array, as
    before a batchnorm, whose shift does the bias's job (PyTorch's nn.Conv2d(bias=False))."""
    bias: param_source(1) = 0.0
    """One value per filter, or any other form."""
    seed: Seed | None = None
    """Seed for this layer's initializers (default: derived from the spec's seed and the layer name)."""

    def _own_problems(self) -> list[Problem]:
        problems = bias_problems(self)
        if self.filters % self.groups:
            problems.append(Problem("NS131", _not_divided(self.groups, self.filters, "filters"), ("groups",)))
        return problems


def _not_divided(groups: int, count: int, what: str) -> str:
    """Why `groups` cannot split `count` channels or filters, and what would."""
    below, above = count // groups * groups, (count // groups + 1) * groups
    multiples = f"{below} or {above}" if below else f"{above}"
    small = [n for n in range(1, int(count**0.5) + 1) if count % n == 0]  # count may be huge: not up to count
    divisors = sorted({*small, *(count // n for n in small)})
    if len(divisors) > 8:
        listed = f"that divide {count}"
    else:
        listed = ", ".join(map(str, divisors[:-1])) + f" or {divisors[-1]}" if len(divisors) > 1 else "1"
    if what == "filters":
        fix = f"use {multiples} filters, or groups {listed}"
        return f"groups {groups} does not divide the {plural(count, 'filter')}; {fix}"
    return f"groups {groups} does not divide the {plural(count, 'channel')} of the {{input}}; use groups {listed}"


def _geometry(layer: Conv2D, input_shape: tuple[int, ...]):
    return windows.geometry(input_shape, tuple(layer.kernel), tuple(layer.stride), tuple(layer.dilation), layer.padding)


def output_shape(layer: Conv2D, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    _, (out_h, out_w) = _geometry(layer, input_shape)
    if input_shape[0] % layer.groups:
        raise Unlocated("NS131", _not_divided(layer.groups, input_shape[0], "channels"), ("groups",))
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
    shapes = {"weights": (layer.filters, input_shape[0] // layer.groups, *layer.kernel)}
    return shapes | {"bias": (layer.filters,)} if layer.use_bias else shapes


def fans(layer: Conv2D, input_shape: tuple[int, ...]) -> tuple[int, int]:
    """fan_in = input channels / groups × kernel area and fan_out = filters × kernel area, as PyTorch counts them
    (a filter reads its group's channels only)."""
    area = layer.kernel[0] * layer.kernel[1]
    return input_shape[0] // layer.groups * area, layer.filters * area


def axis_meanings(layer: Conv2D) -> dict[str, tuple[str, ...]]:
    channel = "input channel" if layer.groups == 1 else "input channel of its group"
    return {"weights": ("filter", channel, "kernel row", "kernel column"), "bias": ("filter",)}


def multiply_adds(layer: Conv2D, input_shape: tuple[int, ...]) -> int:
    filters, out_h, out_w = output_shape(layer, input_shape)
    return filters * out_h * out_w * input_shape[0] // layer.groups * layer.kernel[0] * layer.kernel[1]


def _depthwise(layer: Conv2D, channels: int) -> bool:
    """One group per input channel: each filter reads one channel, so products of matrices would be mostly empty."""
    return layer.groups == channels and channels > 1


class _Products:
    """z = Weight·Window + Bias for every window as rows (batch · out_h · out_w, filters), channels-last.

    The windows are unrolled into one matrix per group (im2col), so each group is one matrix
    product (2-D, which BLAS takes with its operands transposed in place; numpy's stacked products
    copy or loop instead). It is done channels-last, where each window row is a run of contiguous
    channel values: the unrolling then reads memory in order, which is what makes it fast.

    The whole unrolled matrix at once: the plain path that the blocked runner (conv_forward.inferred,
    which training and inference use) is checked against, and the benchmarks' floor.
    """

    def __init__(self, layer: Conv2D, params: dict[str, np.ndarray], x: np.ndarray):
        w, p = params["weights"], _plan(layer, x)
        self.padding, self.padded_shape = p.padding, p.padded_shape
        self.columns, self.matrix = conv_forward.columns(x, p), conv_forward.matrix(w, p)
        self.z = conv_forward.products(self.columns, self.matrix, np.result_type(x, w))
        if "bias" in params:  # none with use_bias: false
            self.z += params["bias"]

    @staticmethod
    def _slices(filters: int, groups: int) -> list[slice]:
        """The filters of each group, in order."""
        size = filters // groups
        return [slice(g * size, (g + 1) * size) for g in range(groups)]


def _gradients(layer: Conv2D, w: np.ndarray, x: np.ndarray, dz: np.ndarray, input_grad: bool):
    """(weights' gradient, the input gradient channels-last (batch, height, width, channels) or None) of a
    convolution of more than one channel a group, on one thread: where the stride is 1, both from dz's
    windows (conv_backward.both_gradients); else the weights' from the input's windows unrolled block by
    block and the input's by slice-adds (`_pieces`)."""
    p = _plan(layer, x)
    pads = _transposed_padding(p) if input_grad else None
    if pads is not None:
        return conv_backward.both_gradients(x, dz, w, p, pads)
    dweights = conv_backward.weight_gradient(x, dz, len(w), p)
    if not input_grad:
        return dweights, None
    kernel, stride, dilation = tuple(layer.kernel), tuple(layer.stride), tuple(layer.dilation)
    piece = _pieces(w, dz, p)
    dx = windows.scatter(piece, kernel, p.out_hw, p.padded_shape, stride, dilation, p.padding, (1, 2), dz.dtype)
    return dweights, dx


def _transposed_padding(p: conv_forward.Plan) -> list[int] | None:
    """conv_backward.transposed_padding: here, so that tests can take the slice-adds path instead."""
    return conv_backward.transposed_padding(p)


def _pieces(w: np.ndarray, dz: np.ndarray, p: conv_forward.Plan):
    """The function giving the input gradient's slice for kernel position (i, j), for `windows.scatter`.

    The slice is dz times that position's weights: one product of (rows, filters) by (filters,
    channels), computed when asked, so that it comes out contiguous and the slice-adds read memory in
    order (the whole (rows, kernel area × channels) product before made 9× the input's size, and
    col2im read it with strides).
    """
    groups, kernel, channels, filters = p.groups, p.kernel, p.channels, len(w)
    batch, (out_h, out_w) = p.batch, p.out_hw
    per_group, each = channels // groups, _Products._slices(filters, groups)
    # (kh, kw, group, filters of the group, channels of the group), contiguous for each product
    matrix = conv_forward.matrix(w, p)
    taps = matrix.reshape(groups, filters // groups, *kernel, per_group).transpose(2, 3, 0, 1, 4).copy()
    part = np.empty((len(dz), channels), dtype=dz.dtype)  # one buffer: scatter adds each piece at once

    def piece(i: int, j: int) -> np.ndarray:
        if groups == 1:
            np.matmul(dz, taps[i, j, 0], out=part)
        for g in range(groups if groups > 1 else 0):
            part[:, g * per_group : (g + 1) * per_group] = dz[:, each[g]] @ taps[i, j, g]
        return part.reshape(batch, out_h, out_w, channels)

    return piece


class _Depthwise:
    """z as `_Products` gives it, for one group per input channel: a multiply-add over the channels for
    each kernel position (a few passes over the input), never a product with a block-diagonal matrix."""

    def __init__(self, layer: Conv2D, params: dict[str, np.ndarray], x: np.ndarray, plan=None, finish=None):
        """`plan` if made already; with `finish` (the activation, in place), z is activated and nothing is
        kept for a backward pass (a runner's)."""
        w, p = params["weights"], plan or _plan(layer, x)
        self.padding, self.padded_shape, self.plan = p.padding, p.padded_shape, p
        self.padded = conv_forward.padded(x, p)
        channels, kernel = p.channels, p.kernel
        self.each = len(w) // channels  # filters per channel (PyTorch's depth multiplier)
        # Filter f reads channel f // each: by kernel position, (channels, each) weights.
        self.taps = w.reshape(channels, self.each, *kernel).transpose(2, 3, 0, 1)
        self.z = depthwise.depthwise(x, self.taps, p, self.padded, params.get("bias"), finish).reshape(-1, len(w))
        self.kernel, self.filters, self.out_hw = kernel, len(w), p.out_hw
        if finish is not None:
            self.padded = self.taps = None

    @property
    def view(self) -> np.ndarray:
        """The windows of the padded channels-last input, (batch, out_h, out_w, channels, kh, kw): a view."""
        return conv_forward.window_view(self.padded, self.plan)

    def backward(self, dz: np.ndarray, input_grad: bool, x: np.ndarray):
        """As `_Products.backward` (the windows are a view of the padded input, kept: no unrolled copy)."""
        dz = dz.reshape(*self.view.shape[:4], self.each)
        dtaps = np.stack([np.einsum("bhwc,bhwce->ce", self.view[..., i, j], dz) for i, j in np.ndindex(*self.kernel)])
        dweights = dtaps.reshape(*self.kernel, self.filters).transpose(2, 0, 1).reshape(self.filters, 1, *self.kernel)
        if not input_grad:
            return dweights, None
        return dweights, lambda i, j: np.einsum("bhwce,ce->bhwc", dz, self.taps[i, j])


def _products(layer: Conv2D, params: dict[str, np.ndarray], x: np.ndarray) -> _Products | _Depthwise:
    return _Depthwise(layer, params, x) if _depthwise(layer, x.shape[1]) else _Products(layer, params, x)


def _plan(layer: Conv2D, x: np.ndarray) -> conv_forward.Plan:
    """The layer's plan for x's shape (made once per shape)."""
    kernel, stride, dilation, padding = layer.kernel, layer.stride, layer.dilation, layer.padding
    return conv_forward.plan(x.shape, kernel, stride, dilation, padding, layer.groups, x.itemsize, layer.filters)


def runner(layer: Conv2D, params: dict[str, np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """The function that runs the layer on a batch: the activation in place, nothing kept for backprop.

    Like dense's runner it holds `params` itself, so in-place changes to the arrays are seen.
    """
    activation = ACTIVATIONS[layer.activation].in_place
    alpha = alpha_of(layer)

    def finish(z: np.ndarray) -> np.ndarray:
        return activation(z, alpha)

    def run(x: np.ndarray) -> np.ndarray:
        p = _plan(layer, x)
        if _depthwise(layer, x.shape[1]):
            z = _Depthwise(layer, params, x, p, finish).z
        elif winograd.eligible(p, layer.filters):
            z = winograd.inferred(x, params["weights"], p, params.get("bias"), finish)
        else:
            z = conv_forward.inferred(x, params["weights"], p, params.get("bias"), finish)
        out_h, out_w = p.out_hw
        return z.reshape(x.shape[0], out_h, out_w, layer.filters).transpose(0, 3, 1, 2)

    return run


def forward(layer: Conv2D, params: dict[str, np.ndarray], x: np.ndarray, train: bool = False, rng=None):
    """Outputs (batch, filters, out_height, out_width), and the backprop function (see dense.forward).

    z goes through the blocked runner (conv_forward.inferred, split between threads where that pays),
    its gradients through conv_backward (split over the batch); a depthwise convolution on one thread."""
    w, p = params["weights"], _plan(layer, x)
    if _depthwise(layer, x.shape[1]):
        done = _Depthwise(layer, params, x, p)
        z = done.z
    else:
        done, z = None, conv_forward.inferred(x, w, p, params.get("bias"))
    batch, (out_h, out_w) = x.shape[0], p.out_hw
    act = ACTIVATIONS[layer.activation]
    alpha = alpha_of(layer)
    y_rows = act.forward(z, alpha)
    y = y_rows.reshape(batch, out_h, out_w, len(w)).transpose(0, 3, 1, 2)  # not -1: empty batches too
    work = 2 * p.rows * p.width * len(w)  # the backward's multiply-adds: weights' and input gradients

    def backprop(dy: np.ndarray, preactivation: bool = False, input_grad: bool = True):
        flat_dy = dy.transpose(0, 2, 3, 1).reshape(-1, dy.shape[1])
        dz = flat_dy if preactivation else act.backward(z, y_rows, flat_dy, alpha)
        bias = {"bias": column_sums(dz).astype(dz.dtype)} if "bias" in params else {}
        if done is None:
            part = functools.partial(_gradients, layer, w)
            dweights, dx = conv_backward.gradients(part, x, dz, input_grad, work)
            return (None if dx is None else dx.transpose(0, 3, 1, 2)), {"weights": dweights} | bias
        dweights, piece = done.backward(dz, input_grad, x)
        if not input_grad:
            return None, {"weights": dweights} | bias
        kernel, stride, dilation = tuple(layer.kernel), tuple(layer.stride), tuple(layer.dilation)
        dx = windows.scatter(piece, kernel, p.out_hw, p.padded_shape, stride, dilation, p.padding, (1, 2), dz.dtype)
        return dx.transpose(0, 3, 1, 2), {"weights": dweights} | bias

    return y, backprop


def to_onnx(node, x: str, emit) -> str:
    """Conv with the padding written out per side (ONNX orders pads as all the starts, then all the ends);
    without a bias (use_bias: false), a Conv of two inputs."""
    layer, name = node.spec, node.name
    (top, bottom), (left, right) = _geometry(layer, node.input_shape)[0]
    arrays = [emit.constant(f"{name}.{key}", node.params[key]) for key in ("weights", "bias") if key in node.params]
    z = emit.node(
        "Conv",
        [x, *arrays],
        f"{name}.conv",
        kernel_shape=list(layer.kernel),
        strides=list(layer.stride),
        dilations=list(layer.dilation),
        pads=[top, left, bottom, right],
        group=layer.groups,
    )
    return activation_to_onnx(layer, z, len(node.output_shape), emit)


def caption(layer: Conv2D, output_shape: tuple[int, ...]) -> str:
    groups = f" in {layer.groups} groups" if layer.groups > 1 else ""
    size = f"{layer.filters}@{layer.kernel[0]}×{layer.kernel[1]}{groups}"
    return f"conv2d {size}, {layer.activation}\n{dims(output_shape)}"


KIND = OneInput(Conv2D, sys.modules[__name__], decayed=frozenset({"weights"}), neurons="kernel")
