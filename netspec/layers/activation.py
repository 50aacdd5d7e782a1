"""The activation layer: a function applied to each value of its input, as PyTorch's nn.ReLU or Keras's Activation."""

import sys
from collections.abc import Callable
from typing import Literal

import numpy as np
from pydantic import Field

from netspec.layers import common
from netspec.layers.activations import ACTIVATIONS, ActivationName
from netspec.layers.common import ActivatedLayer, activation_to_onnx, alpha_of
from netspec.layers.kind import OneInput, dims


class ActivationLayer(ActivatedLayer):
    """An activation of its own, for what reads a layer's value before its activation (conv → batchnorm → relu)."""

    type: Literal["activation"] = "activation"
    """Layer type."""
    activation: ActivationName
    """Function applied to each value of the input."""
    alpha: float | None = Field(default=None, ge=0)
    """leaky_relu's slope below 0 (default 0.01), or elu's alpha·(e^z − 1) below 0 (default 1); only they take it."""


def output_shape(layer: ActivationLayer, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    return input_shape


param_shapes = common.no_param_shapes
fans = common.unit_fans
axis_meanings = common.no_axis_meanings
multiply_adds = common.no_multiply_adds  # as dense and conv2d count none for their activation


def forward(layer: ActivationLayer, params: dict[str, np.ndarray], x: np.ndarray, train: bool = False, rng=None):
    """The activation of each value, and the backprop function (see dense.forward; there are no parameters)."""
    act, alpha = ACTIVATIONS[layer.activation], alpha_of(layer)
    y = act.forward(x, alpha)

    def backprop(dy: np.ndarray, preactivation: bool = False, input_grad: bool = True):
        if not input_grad:
            return None, {}
        return (dy if preactivation else act.backward(x, y, dy, alpha)), {}

    return y, backprop


def runner(layer: ActivationLayer, params: dict[str, np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """A new array each time, never the in-place form: the input belongs to the layer before (or the caller)."""
    act, alpha = ACTIVATIONS[layer.activation].forward, alpha_of(layer)
    return lambda x: act(x, alpha)


def to_onnx(node, x: str, emit) -> str:
    if node.spec.activation == "linear":  # a node all the same, so that every layer has one
        return emit.node("Identity", [x], node.name)
    return activation_to_onnx(node.spec, x, len(node.output_shape), emit)


def caption(layer: ActivationLayer, output_shape: tuple[int, ...]) -> str:
    return f"activation, {layer.activation}\n{dims(output_shape)}"


KIND = OneInput(ActivationLayer, sys.modules[__name__], passes="elementwise")
