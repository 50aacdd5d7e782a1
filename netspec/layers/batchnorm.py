"""Batch normalization: each channel scaled to mean 0 and variance 1, then by a learned scale and shift."""

import sys
from typing import Literal

import numpy as np
from pydantic import Field

from netspec.fields import Ones, Zeros, param_source
from netspec.layers.activations import ACTIVATIONS, ActivationName
from netspec.layers.common import ActivatedLayer, activation_to_onnx, alpha_of
from netspec.layers.kind import OneInput, dims
from netspec.layers.sums import Channels


class BatchNorm(ActivatedLayer):
    """As PyTorch's BatchNorm1d/2d and ONNX's BatchNormalization, over channels (or features)."""

    type: Literal["batchnorm"] = "batchnorm"
    """Layer type."""
    momentum: float = Field(default=0.1, gt=0, le=1)
    """Weight of each training batch in the running statistics: running = (1 - m)·running + m·batch."""
    epsilon: float = Field(default=1e-5, gt=0)
    """Added to the variance before its square root."""
    scale: param_source(1) = Field(default_factory=lambda: Ones(init="ones"))
    """Learned scale (γ), one value per channel."""
    shift: param_source(1) = Field(default_factory=lambda: Zeros(init="zeros"))
    """Learned shift (β), one value per channel."""
    mean: param_source(1) = Field(default_factory=lambda: Zeros(init="zeros"))
    """Running mean, one value per channel; used when running the network."""
    var: param_source(1) = Field(default_factory=lambda: Ones(init="ones"))
    """Running variance, one value per channel; used when running the network."""
    activation: ActivationName = "linear"
    """Function applied to the scaled and shifted values (conv → batchnorm → relu, as PyTorch models are written)."""
    alpha: float | None = Field(default=None, ge=0)
    """leaky_relu's slope below 0 (default 0.01), or elu's alpha·(e^z − 1) below 0 (default 1); only they take it."""


PARAMS = ("scale", "shift", "mean", "var")
NON_NEGATIVE = frozenset({"var"})
"""Parameters whose values can never be negative; the builder refuses arrays that are."""
NOT_LEARNED = frozenset({"mean", "var"})
"""Kept up to date while training, but not by gradients: Keras's non-trainable weights."""


def output_shape(layer: BatchNorm, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    return input_shape


def param_shapes(layer: BatchNorm, input_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    return {name: (input_shape[0],) for name in PARAMS}


def fans(layer: BatchNorm, input_shape: tuple[int, ...]) -> tuple[int, int]:
    return 1, 1


def axis_meanings(layer: BatchNorm) -> dict[str, tuple[str, ...]]:
    return {name: ("channel",) for name in PARAMS}


def multiply_adds(layer: BatchNorm, input_shape: tuple[int, ...]) -> int:
    return int(np.prod(input_shape))


def forward(layer: BatchNorm, params: dict[str, np.ndarray], x: np.ndarray, train: bool = False, rng=None):
    """Normalised outputs through the activation, and the backprop function (see dense.forward).

    While training, the batch's own statistics normalise it and the running statistics are
    updated in place (the unbiased variance, as PyTorch); otherwise the running ones are used.
    Every sum over the batch is accumulated in float64 (`sums.column_sums`): in float32 a sum of
    thousands of values per channel keeps few correct digits, and the backward pass subtracts such
    sums from each other, so a deep float32 network's gradients drifted several times further from
    float64's than PyTorch's do.
    """
    count = x.size // max(x.shape[1], 1)
    # One value per channel has no variance: such a batch (say the last, of one example) is
    # normalised with the running statistics and leaves them as they are (PyTorch refuses it).
    train = train and count > 1
    layout = Channels(x)
    v, per = layout.flat(x), layout.vector
    if train:
        mean = layout.sums(v) / count
        normal = v - per(mean.astype(x.dtype))  # the deviations first: two passes, no cancellation
        var = layout.sums(normal * normal) / count
        m = layer.momentum
        params["mean"] *= 1 - m
        params["mean"] += m * mean
        params["var"] *= 1 - m
        params["var"] += m * var * (count / (count - 1))
    else:
        mean, var = params["mean"], params["var"]
        normal = v - per(mean)
    inv_std = 1.0 / np.sqrt(var.astype(np.float64) + layer.epsilon)
    normal *= per(inv_std.astype(x.dtype))
    z = normal * per(params["scale"])
    z += per(params["shift"])
    act, alpha = ACTIVATIONS[layer.activation], alpha_of(layer)
    y = act.forward(z, alpha)

    def backprop(dy, preactivation: bool = False, input_grad: bool = True):
        dy = layout.flat(dy)
        dz = dy if preactivation else act.backward(z, y, dy, alpha)
        dshift, dscale = layout.sums(dz), layout.sums(dz * normal)
        grads = {"scale": dscale.astype(dz.dtype), "shift": dshift.astype(dz.dtype)}
        if not input_grad:
            return None, grads
        # dx = scale·inv_std·(dz − mean(dz) − normal·mean(dz·normal)): the per-channel factors in
        # float64, then three passes over the values.
        factor = params["scale"].astype(np.float64) * inv_std
        dx = dz * per(factor.astype(dz.dtype))
        if train:
            dx -= per((factor * dshift / count).astype(dz.dtype))
            dx -= normal * per((factor * dscale / count).astype(dz.dtype))
        return layout.shaped(dx), grads

    return layout.shaped(y), backprop


def to_onnx(node, x: str, emit) -> str:
    inputs = [x] + [emit.constant(f"{node.name}.{key}", node.params[key]) for key in PARAMS]
    # ONNX's momentum weighs the running value: running = running·momentum + batch·(1 − momentum).
    z = emit.node("BatchNormalization", inputs, node.name, epsilon=node.spec.epsilon, momentum=1 - node.spec.momentum)
    return activation_to_onnx(node.spec, z, len(node.output_shape), emit)


def caption(layer: BatchNorm, output_shape: tuple[int, ...]) -> str:
    activation = "" if layer.activation == "linear" else f", {layer.activation}"
    return f"batchnorm{activation}\n{dims(output_shape)}"


KIND = OneInput(
    BatchNorm, sys.modules[__name__], not_learned=NOT_LEARNED, non_negative=NON_NEGATIVE, passes="elementwise"
)
