"""The dense layer: every neuron computes Output = Weight·Input + Bias, then the activation."""

import sys
from collections.abc import Callable
from math import prod
from typing import Literal

import numpy as np
from pydantic import Field

from netspec.errors import Problem
from netspec.fields import Count, GlorotUniform, Seed, param_source
from netspec.layers.activations import ACTIVATIONS, ActivationName
from netspec.layers.common import ActivatedLayer, activation_to_onnx, alpha_of, bias_problems
from netspec.layers.kind import OneInput


class Dense(ActivatedLayer):
    """A fully connected layer; it reads its input flattened (channels, height, width order)."""

    type: Literal["dense"] = "dense"
    """Layer type."""
    neurons: Count
    """How many neurons the layer has; each gives one output."""
    activation: ActivationName = "linear"
    """Function applied to Weight·Input + Bias."""
    alpha: float | None = Field(default=None, ge=0)
    """leaky_relu's slope below 0 (default 0.01), or elu's alpha·(e^z − 1) below 0 (default 1); only they take it."""
    weights: param_source(2) = Field(default_factory=lambda: GlorotUniform(init="glorot_uniform"))
    """One row per neuron with one value per input (as PyTorch's nn.Linear), or any other form."""
    use_bias: bool = True
    """Whether the layer adds a bias (Keras's use_bias); false: Weight·Input alone and no bias array, as
    before a batchnorm, whose shift does the bias's job (PyTorch's nn.Linear(bias=False))."""
    bias: param_source(1) = 0.0
    """One value per neuron, or any other form."""
    seed: Seed | None = None
    """Seed for this layer's initializers (default: derived from the spec's seed and the layer name)."""

    def _own_problems(self) -> list[Problem]:
        return bias_problems(self)


def output_shape(layer: Dense, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    return (layer.neurons,)


def param_shapes(layer: Dense, input_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    shapes = {"weights": (layer.neurons, prod(input_shape))}
    return shapes | {"bias": (layer.neurons,)} if layer.use_bias else shapes


def fans(layer: Dense, input_shape: tuple[int, ...]) -> tuple[int, int]:
    """Inputs and outputs per neuron, which scale the Glorot, He and LeCun initializers."""
    return prod(input_shape), layer.neurons


def axis_meanings(layer: Dense) -> dict[str, tuple[str, ...]]:
    """What each axis of each parameter counts, for messages about wrong shapes."""
    return {"weights": ("neuron", "input"), "bias": ("neuron",)}


def multiply_adds(layer: Dense, input_shape: tuple[int, ...]) -> int:
    return layer.neurons * prod(input_shape)


def forward(layer: Dense, params: dict[str, np.ndarray], x: np.ndarray, train: bool = False, rng=None):
    """Outputs for a batch `x`, and the function that turns output gradients into input and parameter gradients.

    Every layer's forward takes `train` (training, not running) and `rng` (for random layers such
    as dropout); dense uses neither.

    The backprop function takes dy (the gradient of the outputs) and returns (dx, {"weights": dW,
    "bias": db}). With `preactivation=True`, dy is already the gradient of z = Weight·Input + Bias
    (a loss folded with softmax gives it directly, without softmax's ill-conditioned Jacobian);
    with `input_grad=False` dx is not computed (the first layer has no use for it) and is None.
    """
    w, b = params["weights"], params.get("bias")  # no bias with use_bias: false
    flat = x.reshape(len(x), prod(x.shape[1:]))  # not -1: that cannot be inferred for an empty batch
    z = flat @ w.T
    if b is not None:
        z += b
    act = ACTIVATIONS[layer.activation]
    alpha = alpha_of(layer)
    y = act.forward(z, alpha)

    def backprop(dy: np.ndarray, preactivation: bool = False, input_grad: bool = True):
        dz = dy if preactivation else act.backward(z, y, dy, alpha)
        grads = {"weights": dz.T @ flat}
        if b is not None:
            grads["bias"] = dz.sum(axis=0)
        return ((dz @ w).reshape(x.shape) if input_grad else None), grads

    return y, backprop


def runner(layer: Dense, params: dict[str, np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """The function that runs the layer on a batch: its arrays bound once, the activation in place.

    It holds the arrays themselves: whoever replaces an array in `params` makes a new runner
    (in-place updates, as the optimizers make, are seen).
    """
    w_t, b = params["weights"].T, params.get("bias")
    inputs, activation = w_t.shape[0], ACTIVATIONS[layer.activation].in_place
    alpha = alpha_of(layer)

    def run(x: np.ndarray) -> np.ndarray:
        z = np.dot(x if x.ndim == 2 else x.reshape(x.shape[0], inputs), w_t)
        if b is not None:
            z += b
        return activation(z, alpha)

    return run


def to_onnx(node, x: str, emit) -> str:
    """Gemm (weights as stored, transposed by the node) after a Flatten if the planner said so, then the activation.

    Without a bias (use_bias: false) the Gemm has no third input, as ONNX allows from opset 11.
    """
    name = node.name
    if node.flattened:  # the input image, read flattened
        x = emit.node("Flatten", [x], f"{name}.flatten", axis=1)
    arrays = [emit.constant(f"{name}.{key}", node.params[key]) for key in ("weights", "bias") if key in node.params]
    z = emit.node("Gemm", [x, *arrays], f"{name}.gemm", transB=1)
    return activation_to_onnx(node.spec, z, len(node.output_shape), emit)


def caption(layer: Dense, output_shape: tuple[int, ...]) -> str:
    return f"dense, {layer.neurons:,} neurons\n{layer.activation}"


KIND = OneInput(Dense, sys.modules[__name__], decayed=frozenset({"weights"}), reads_flat=True, neurons="fan")
